"""`synthtasks generate PROJECT --prompt …`: start a generation job, optionally follow it.

`--var drug=metformin,warfarin` fills `{drug}` in the prompt; texts are spread evenly
over the values (or their combinations). `--label DRUG="a medication"` asks the model to
mark entities too (pre-annotation); `--bind drug=DRUG` marks every text's `{drug}` value
as DRUG. `--request-id` makes a retried command
idempotent: the same id in the same project returns the same job. Without it every
call starts a new job (a fresh id is generated)."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from rich.console import Console
from synthtasks.v1 import generation_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import (
    binding,
    entity_label,
    leaf,
    non_negative_float,
    non_negative_int,
    positive_int,
    variable,
    variable_file,
)
from synthtasks_cli.context import Context
from synthtasks_cli.errors import UsageError
from synthtasks_cli.jobs import add_stall_timeout, follow, job_details

DEFAULT_TEMPERATURE = 1.0
DEFAULT_COUNT = 10


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = leaf(commands, "generate", common, help="generate synthetic texts in a project", description=__doc__)
    parser.add_argument("project", help="project id or projects/ID")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="the prompt; {name} placeholders take --var values")
    prompt.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE ('-' for stdin)")
    parser.add_argument("--system-prompt", default="", help="system message")
    parser.add_argument(
        "--temperature",
        type=non_negative_float,
        default=DEFAULT_TEMPERATURE,
        help=f"0 to 2 (default {DEFAULT_TEMPERATURE:g})",
    )
    parser.add_argument(
        "--count", type=positive_int, default=DEFAULT_COUNT, help=f"how many texts (default {DEFAULT_COUNT})"
    )
    parser.add_argument("--provider", help="provider id (default: the project's default provider)")
    parser.add_argument("--model", default="", help="override the provider's model")
    parser.add_argument("--max-output-tokens", type=non_negative_int, default=0, help="cap on each text's tokens")
    parser.add_argument("--seed", type=int, help="seed passed to the provider")
    parser.add_argument("--tag", action="append", default=[], help="extra tag on every text (repeatable)")
    parser.add_argument(
        "--var", action="append", type=variable, default=[], metavar="NAME=V1,V2", help="values of {NAME} (repeatable)"
    )
    parser.add_argument(
        "--var-file",
        action="append",
        type=variable_file,
        default=[],
        metavar="NAME=PATH",
        help="values of {NAME}, one per line of PATH (repeatable)",
    )
    parser.add_argument(
        "--label",
        action="append",
        type=entity_label,
        default=[],
        metavar="NAME[=DESCRIPTION]",
        help="pre-annotate entities with this label, e.g. DRUG='a medication' (repeatable)",
    )
    parser.add_argument(
        "--bind",
        action="append",
        type=binding,
        default=[],
        metavar="VARIABLE=LABEL",
        help="mark each text's value of {VARIABLE} with LABEL (repeatable)",
    )
    parser.add_argument("--unique", action="store_true", help="replace duplicates so that COUNT distinct texts arrive")
    parser.add_argument("--request-id", help="idempotency key: the same id returns the same job (default: a fresh one)")
    parser.add_argument("--wait", action="store_true", help="follow the job with a progress bar until it ends")
    add_stall_timeout(parser)
    parser.set_defaults(run=run)


def read_prompt(args: argparse.Namespace) -> str:
    if args.prompt is not None:
        text = args.prompt
    elif args.prompt_file == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.prompt_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the prompt file {args.prompt_file}: {exc.strerror}") from None
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text.strip("\n")


def job_from_args(args: argparse.Namespace, prompt: str) -> pb.GenerationJob:
    variables: dict[str, list[str]] = {}
    for name, values in [*args.var, *args.var_file]:
        if name in variables:
            raise UsageError(f"variable {name!r} is given twice")
        variables[name] = values
    job = pb.GenerationJob(
        prompt=prompt,
        system_prompt=args.system_prompt,
        temperature=args.temperature,
        text_count=args.count,
        provider=names.provider(args.provider) if args.provider else "",
        model=args.model,
        max_output_tokens=args.max_output_tokens,
        tags=args.tag,
        variables=[pb.PromptVariable(name=name, values=values) for name, values in variables.items()],
        unique=args.unique,
        labels=[pb.EntityLabel(name=name, description=description) for name, description in args.label],
        variable_labels=dict(args.bind),
    )
    if args.seed is not None:
        job.seed = args.seed
    return job


def build_request(args: argparse.Namespace, prompt: str) -> pb.CreateGenerationJobRequest:
    return pb.CreateGenerationJobRequest(
        parent=names.project(args.project),
        generation_job=job_from_args(args, prompt),
        request_id=args.request_id or str(uuid.uuid4()),
    )


def run(ctx: Context, args: argparse.Namespace) -> int:
    request = build_request(args, read_prompt(args))
    reply = ctx.client.call(ctx.client.generation.CreateGenerationJob, request)
    job = reply.generation_job
    if args.wait:
        ctx.out.note(f"Started {job.name} (request id {request.request_id})")
        return follow(ctx, job.name, stall_timeout=args.stall_timeout)

    def render(console: Console) -> None:
        console.print(job_details(job))
        console.print(f"Follow it with: synthtasks jobs watch {job.name}", markup=False)

    ctx.out.result(reply, render)
    return 0
