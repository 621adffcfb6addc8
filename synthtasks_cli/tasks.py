"""`synthtasks tasks list|get|tag add|tag remove|export`: annotation tasks made by importing texts.

Tasks from generated texts keep the `synthetic` tag whatever is removed."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from rich.console import Console
from synthtasks.v1 import task_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf, positive_int
from synthtasks_cli.context import Context
from synthtasks_cli.output import details, printing, table, when
from synthtasks_cli.texts import (
    EXTENSIONS,
    FORMATS,
    add_export_flags,
    edited_tags,
    export_options_from_args,
    export_to,
    report_export,
    spans_summary,
)

COLLECTION = "tasks"
_EDIT_ATTEMPTS = 3


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "tasks", common, help="annotation tasks imported from texts")

    listing = leaf(actions, "list", common, help="a project's tasks")
    listing.add_argument("project", help="project id or projects/ID")
    listing.add_argument("--tag", help="only tasks with this tag")
    listing.add_argument("--job", help="only tasks from this job (ID or projects/P/generationJobs/ID)")
    listing.add_argument("--page-size", type=positive_int, default=50, help="tasks per page (default 50)")
    listing.add_argument("--page-token", default="", help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=list_tasks)

    get = leaf(actions, "get", common, help="show a task")
    _add_task_argument(get)
    get.set_defaults(run=get_task)

    tag_parser = leaf(actions, "tag", common, help="add or remove a task's tags")
    tag_actions = tag_parser.add_subparsers(dest="tag_action", metavar="add|remove", required=True)
    for action, handler in (("add", add_tags), ("remove", remove_tags)):
        parser = leaf(tag_actions, action, common, help=f"{action} tags")
        _add_task_argument(parser)
        parser.add_argument("tags", nargs="+", metavar="TAG")
        parser.set_defaults(run=handler)

    export = leaf(actions, "export", common, help="download tasks (with their predictions) as a file")
    export.add_argument("project", help="project id or projects/ID")
    export.add_argument("--tag", help="only tasks with this tag")
    export.add_argument("--job", help="only tasks from this job (ID or projects/P/generationJobs/ID)")
    add_export_flags(export)
    export.set_defaults(run=export_tasks)


def _add_task_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="TASK", help="projects/P/tasks/ID, or ID with --project")
    parser.add_argument("--project", "-p", help="the project of a bare task id")


def task_details(task: pb.Task) -> Any:
    return details(
        [
            ("name", task.name),
            ("text", task.text),
            ("tags", ", ".join(task.tags)),
            ("source text", task.source_staged_text),
            ("job", task.generation_job),
            (
                "predictions",
                "; ".join(f"{p.model_version}: {spans_summary(p.spans)}" for p in task.predictions),
            ),
            ("created", when(task.create_time)),
            ("etag", task.etag),
        ]
    )


def list_tasks(ctx: Context, args: argparse.Namespace) -> int:
    project = names.project(args.project)
    request = pb.ListTasksRequest(
        parent=project,
        page_size=args.page_size,
        page_token=args.page_token,
        tag=args.tag or "",
        generation_job=names.child(args.job, "generationJobs", project) if args.job else "",
    )
    found: list[pb.Task] = []
    while True:
        reply = ctx.client.call(ctx.client.tasks.ListTasks, request)
        found.extend(reply.tasks)
        if not args.all or not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    next_token = "" if args.all else reply.next_page_token

    def render(console: Console) -> None:
        if not found:
            console.print(f"No tasks in {project} match.", markup=False)
        else:
            console.print(
                table(
                    ["TASK ID", "TAGS", "JOB", "CREATED", "TEXT"],
                    [
                        (
                            names.short(t.name),
                            ", ".join(t.tags),
                            names.short(t.generation_job) if t.generation_job else "",
                            when(t.create_time),
                            t.text,
                        )
                        for t in found
                    ],
                )
            )
        if next_token:
            console.print(f"More: --page-token {next_token} (or --all)", markup=False)

    ctx.out.result(pb.ListTasksResponse(tasks=found, next_page_token=next_token), render)
    return 0


def get_task(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(
        ctx.client.tasks.GetTask, pb.GetTaskRequest(name=names.child(args.name, COLLECTION, args.project))
    )
    ctx.out.result(reply, lambda console: console.print(task_details(reply.task)))
    return 0


def _change_tags(ctx: Context, args: argparse.Namespace, *, add: list[str], remove: list[str]) -> int:
    """Read-modify-write of the tags under the task's etag, re-applied after a concurrent change."""
    name = names.child(args.name, COLLECTION, args.project)
    client = ctx.client
    for attempt in range(1, _EDIT_ATTEMPTS + 1):
        current = client.call(client.tasks.GetTask, pb.GetTaskRequest(name=name)).task
        change = pb.Task(name=name, etag=current.etag, tags=edited_tags(list(current.tags), add, remove))
        try:
            reply = client.call(
                client.tasks.UpdateTask, pb.UpdateTaskRequest(task=change, update_mask=FieldMask(paths=["tags"]))
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ABORTED and attempt < _EDIT_ATTEMPTS:
                continue
            raise
        ctx.out.result(reply, printing(task_details(reply.task)))
        return 0
    raise AssertionError("unreachable")  # pragma: no cover


def add_tags(ctx: Context, args: argparse.Namespace) -> int:
    return _change_tags(ctx, args, add=args.tags, remove=[])


def remove_tags(ctx: Context, args: argparse.Namespace) -> int:
    return _change_tags(ctx, args, add=[], remove=args.tags)


def export_tasks(ctx: Context, args: argparse.Namespace) -> int:
    project = names.project(args.project)
    request = pb.ExportTasksRequest(
        parent=project,
        tag=args.tag or "",
        generation_job=names.child(args.job, "generationJobs", project) if args.job else "",
        format=FORMATS[args.format],
        options=export_options_from_args(args),
    )
    path, size = export_to(
        ctx.client,
        ctx.client.tasks.ExportTasks,
        request,
        args.out,
        f"{names.short(project)}-tasks.{EXTENSIONS[args.format]}",
    )
    report_export(ctx, path, size)
    return 0
