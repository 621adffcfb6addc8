"""`synthtasks jobs list|get|watch|cancel|balance`: generation jobs of a project.

A job is named `projects/P/generationJobs/ID`; every command also takes the bare ID
with `--project P`. `balance` without a job counts every job of `--project`."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from synthtasks.v1 import generation_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf, positive_float, positive_int
from synthtasks_cli.context import Context
from synthtasks_cli.errors import Interrupted, UsageError
from synthtasks_cli.output import details, table, when
from synthtasks_cli.watch import balance_summary, reason_label, state_label, summary, watch_job

STATES = {
    "queued": pb.GENERATION_JOB_STATE_QUEUED,
    "running": pb.GENERATION_JOB_STATE_RUNNING,
    "succeeded": pb.GENERATION_JOB_STATE_SUCCEEDED,
    "failed": pb.GENERATION_JOB_STATE_FAILED,
    "cancelled": pb.GENERATION_JOB_STATE_CANCELLED,
}
COLLECTION = "generationJobs"


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "jobs", common, help="follow and cancel generation jobs")

    listing = leaf(actions, "list", common, help="a project's jobs, newest first")
    listing.add_argument("project", help="project id or projects/ID")
    listing.add_argument("--state", choices=sorted(STATES), help="only jobs in this state")
    listing.add_argument("--page-size", type=positive_int, default=50, help="jobs per page (default 50)")
    listing.add_argument("--page-token", default="", help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=list_jobs)

    balance = leaf(
        actions,
        "balance",
        common,
        help="entity balance: texts and spans per label and per variable value, with a bar each",
    )
    balance.add_argument("job", nargs="?", help="projects/P/generationJobs/ID, or ID with --project; none: the project")
    balance.add_argument("--project", "-p", help="the project of a bare job id, or the project to count")
    balance.set_defaults(run=entity_balance)

    for action, handler, text in (
        ("get", get_job, "show a job"),
        ("watch", watch, "follow a job with a progress bar until it ends (exit 1 unless it succeeded)"),
        ("cancel", cancel_job, "stop a job's further provider calls (staged texts stay)"),
    ):
        parser = leaf(actions, action, common, help=text)
        add_job_argument(parser)
        if action == "watch":
            add_stall_timeout(parser)
        parser.set_defaults(run=handler)


def add_job_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="projects/P/generationJobs/ID, or ID with --project")
    parser.add_argument("--project", "-p", help="the project of a bare job id")


def add_stall_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stall-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="give up (exit 1) when the job has not changed for this long (default: wait as long as it runs)",
    )


def job_name(args: argparse.Namespace) -> str:
    return names.child(args.job, COLLECTION, args.project)


def _tokens(job: pb.GenerationJob) -> str:
    usage = job.usage
    if not usage.prompt_tokens and not usage.completion_tokens:
        return ""
    return f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"


def _state(job: pb.GenerationJob) -> str:
    """The state, and whether the job has made no progress for a while (the gateway's
    stall threshold): it may wait for workers or a provider, or its queued work was lost
    and the gateway is enqueueing it again."""
    return f"{state_label(job)}, stalled" if job.stalled else state_label(job)


def job_details(job: pb.GenerationJob) -> Any:
    counts = job.counts
    return details(
        [
            ("name", job.name),
            ("state", _state(job)),
            ("last progress", when(job.update_time) if job.stalled else ""),
            ("prompt", job.prompt),
            ("system prompt", job.system_prompt),
            ("variables", "; ".join(f"{v.name}={', '.join(v.values)}" for v in job.variables)),
            ("labels", ", ".join(label.name for label in job.labels)),
            (
                "bound",
                ", ".join(f"{{{variable}}} -> {label}" for variable, label in sorted(job.variable_labels.items())),
            ),
            ("dropped spans", counts.dropped_spans or ""),
            ("temperature", f"{job.temperature:g}"),
            (
                "texts",
                (
                    f"{counts.produced} produced, {counts.failed} failed, {counts.duplicates} duplicates"
                    f" of {counts.requested or job.text_count}"
                ),
            ),
            ("provider", job.provider or "(project default)"),
            ("model", job.model),
            ("max output tokens", job.max_output_tokens or ""),
            ("seed", job.seed if job.HasField("seed") else ""),
            ("unique", "yes" if job.unique else ""),
            ("tags", ", ".join(job.tags)),
            ("tokens", _tokens(job)),
            (
                "error",
                f"{reason_label(job.error.reason)}: {job.error.message}"
                if job.error.reason or job.error.message
                else "",
            ),
            ("created", when(job.create_time)),
            ("started", when(job.start_time)),
            ("ended", when(job.end_time)),
            ("request id", job.request_id),
        ]
    )


def job_table(jobs: list[pb.GenerationJob]) -> Any:
    return table(
        ["JOB", "STATE", "TEXTS", "FAILED", "DUP", "PROVIDER", "CREATED", "PROMPT"],
        [
            (
                names.short(j.name),
                _state(j),
                f"{j.counts.produced}/{j.counts.requested or j.text_count}",
                j.counts.failed,
                j.counts.duplicates,
                names.short(j.provider) if j.provider else "default",
                when(j.create_time),
                j.prompt if len(j.prompt) <= 40 else j.prompt[:39] + "…",
            )
            for j in jobs
        ],
    )


def list_jobs(ctx: Context, args: argparse.Namespace) -> int:
    request = pb.ListGenerationJobsRequest(
        parent=names.project(args.project),
        page_size=args.page_size,
        page_token=args.page_token,
        state=STATES.get(args.state or "", pb.GENERATION_JOB_STATE_UNSPECIFIED),
    )
    found: list[pb.GenerationJob] = []
    while True:
        reply = ctx.client.call(ctx.client.generation.ListGenerationJobs, request)
        found.extend(reply.generation_jobs)
        if not args.all or not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    next_token = "" if args.all else reply.next_page_token

    def render(console: Console) -> None:
        console.print(job_table(found) if found else f"No jobs in {request.parent}.")
        if next_token:
            console.print(f"More: --page-token {next_token} (or --all)", markup=False)

    ctx.out.result(pb.ListGenerationJobsResponse(generation_jobs=found, next_page_token=next_token), render)
    return 0


def get_job(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(ctx.client.generation.GetGenerationJob, pb.GetGenerationJobRequest(name=job_name(args)))
    ctx.out.result(reply, lambda console: console.print(job_details(reply.generation_job)))
    return 0


def follow(ctx: Context, name: str, *, stall_timeout: float | None = None) -> int:
    """Watch to the end, print the outcome; exit 1 unless the job succeeded."""
    try:
        watched = watch_job(ctx.client, name, None if ctx.out.json_mode else ctx.out.err, stall_timeout=stall_timeout)
    except KeyboardInterrupt:
        raise Interrupted(
            f"stopped watching; the job goes on (follow it with: synthtasks jobs watch {name}; "
            f"stop it with: synthtasks jobs cancel {name})"
        ) from None
    job = watched.job

    def render(console: Console) -> None:
        console.print(summary(job), markup=False)
        if watched.entity_balance is not None:
            # One line however many labels: soft_wrap leaves it unbroken for grep and logs.
            console.print(balance_summary(watched.entity_balance), markup=False, soft_wrap=True)

    ctx.out.result(pb.GetGenerationJobResponse(generation_job=job), render)
    return 0 if job.state == pb.GENERATION_JOB_STATE_SUCCEEDED else 1


def watch(ctx: Context, args: argparse.Namespace) -> int:
    return follow(ctx, job_name(args), stall_timeout=args.stall_timeout)


def cancel_job(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(
        ctx.client.generation.CancelGenerationJob, pb.CancelGenerationJobRequest(name=job_name(args))
    )
    job = reply.generation_job
    ctx.out.result(reply, lambda console: console.print(f"{job.name}: {state_label(job)}", markup=False))
    return 0


# Width of the longest bar in `jobs balance`; the others are scaled to it.
BAR_WIDTH = 30


def bar(count: int, most: int) -> str:
    """A bar of `count` against `most`; a count above zero always shows at least one block,
    so that a rare entity never looks absent."""
    if count <= 0 or most <= 0:
        return ""
    return "█" * max(1, round(count / most * BAR_WIDTH))


def balance_tables(balance: pb.EntityBalance) -> list[Any]:
    """Labels, then variable values, each with a bar of its spans."""
    most_label = max((item.spans for item in balance.labels), default=0)
    most_value = max((item.spans for item in balance.variable_values), default=0)
    tables = [
        table(
            ["LABEL", "TEXTS", "SPANS", ""],
            [(item.label, item.texts, item.spans, bar(item.spans, most_label)) for item in balance.labels],
            title=f"{balance.texts} texts, {balance.spans} spans, {balance.dropped_spans} dropped (not located)",
        )
    ]
    if balance.variable_values:
        tables.append(
            table(
                ["VARIABLE", "VALUE", "LABEL", "TEXTS", "MARKED", ""],
                [
                    (
                        item.variable,
                        item.value,
                        ", ".join(item.labels),
                        item.texts,
                        item.spans,
                        bar(item.spans, most_value),
                    )
                    for item in balance.variable_values
                ],
            )
        )
    return tables


def entity_balance(ctx: Context, args: argparse.Namespace) -> int:
    if args.job:
        scope = job_name(args)
    elif args.project:
        scope = names.project(args.project)
    else:
        raise UsageError("give a job (projects/P/generationJobs/ID, or ID with --project) or --project PROJECT")
    reply = ctx.client.call(ctx.client.generation.GetEntityBalance, pb.GetEntityBalanceRequest(scope=scope))

    def render(console: Console) -> None:
        for rendered in balance_tables(reply.entity_balance):
            console.print(rendered)

    ctx.out.result(reply, render)
    return 0
