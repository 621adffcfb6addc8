"""`synthtasks labeling-config`: a Label Studio labeling config matching the exports.

Label Studio needs a project's labeling config before it imports tasks; the names of
its `<Labels>` and `<Text>` tags must be the `from_name` and `to_name` of the exported
predictions (`--from-name`/`--to-name` of `texts export` and `tasks export`), and its
label values the span labels. Labels come from `--labels` or from a job's label set."""

from __future__ import annotations

import argparse
import sys
from xml.sax.saxutils import quoteattr

from synthtasks.v1 import generation_service_pb2 as gen_pb

from synthtasks_cli import names
from synthtasks_cli.arguments import leaf
from synthtasks_cli.context import Context
from synthtasks_cli.errors import UsageError


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = leaf(
        commands,
        "labeling-config",
        common,
        help="print a Label Studio labeling config for the exported spans",
        description="Print a Label Studio labeling config (XML) whose tag names and labels match"
        " `texts export --format label-studio` and `tasks export --format label-studio`.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="comma-separated label names, e.g. DRUG,DOSE,FREQUENCY")
    source.add_argument(
        "--job", help="take the labels (and their descriptions) of this job: projects/P/generationJobs/ID"
    )
    parser.add_argument("--from-name", default="label", help="name of the <Labels> tag (default label)")
    parser.add_argument("--to-name", default="text", help="name of the <Text> tag (default text)")
    parser.set_defaults(run=print_config)


def print_config(ctx: Context, args: argparse.Namespace) -> int:
    if args.job:
        job = ctx.client.call(
            ctx.client.generation.GetGenerationJob,
            gen_pb.GetGenerationJobRequest(name=names.child(args.job, "generationJobs", None)),
        ).generation_job
        labels = [(label.name, label.description) for label in job.labels]
        if not labels:
            raise UsageError(f"{job.name} has no labels: pass --labels instead")
    else:
        labels = [(name.strip(), "") for name in args.labels.split(",") if name.strip()]
        if not labels:
            raise UsageError("--labels needs at least one label name")
    sys.stdout.write(labeling_config(labels, from_name=args.from_name, to_name=args.to_name))
    return 0


def labeling_config(labels: list[tuple[str, str]], *, from_name: str, to_name: str) -> str:
    """The XML: one `<Label>` per label (its description as the hint), on a `<Text>` of `$text`."""
    lines = ["<View>", f"  <Labels name={quoteattr(from_name)} toName={quoteattr(to_name)}>"]
    for name, description in labels:
        hint = f" hint={quoteattr(description)}" if description else ""
        lines.append(f"    <Label value={quoteattr(name)}{hint}/>")
    lines += ["  </Labels>", f'  <Text name={quoteattr(to_name)} value="$text"/>', "</View>", ""]
    return "\n".join(lines)
