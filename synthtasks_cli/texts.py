"""`synthtasks texts list|get|edit|discard|restore|import|export`: review staged texts.

Staged texts are named `projects/P/stagedTexts/ID`; commands also take bare IDs with
`--project P`. `edit` is a read-modify-write guarded by the text's etag: tag changes
are re-applied when someone else changed the text meanwhile, a text replacement is not
(it would overwrite their edit) and fails with ABORTED instead."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from rich.console import Console
from synthtasks.v1 import task_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf, positive_int
from synthtasks_cli.context import Context
from synthtasks_cli.errors import UsageError
from synthtasks_cli.gateway import GatewayClient
from synthtasks_cli.output import details, enum_label, printing, seconds, table, when

COLLECTION = "stagedTexts"
STATES = {
    "staged": pb.STAGED_TEXT_STATE_STAGED,
    "imported": pb.STAGED_TEXT_STATE_IMPORTED,
    "discarded": pb.STAGED_TEXT_STATE_DISCARDED,
}
FORMATS = {
    "csv": pb.EXPORT_FORMAT_CSV,
    "json": pb.EXPORT_FORMAT_JSON,
    "jsonl": pb.EXPORT_FORMAT_JSONL,
    "label-studio": pb.EXPORT_FORMAT_LABEL_STUDIO,
}
EXTENSIONS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "label-studio": "label-studio.json"}
FORMATS_HELP = (
    "file format (default csv): csv for spreadsheets, json for the annotation platform,"
    " jsonl for spaCy/Prodigy (spans), label-studio for Label Studio (spans as predictions)"
)
# Tag-only edits retried after a concurrent change, at most this many times.
_EDIT_ATTEMPTS = 3


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "texts", common, help="review, edit, import and export staged texts")

    listing = leaf(actions, "list", common, help="a project's staged texts, newest first")
    listing.add_argument("project", help="project id or projects/ID")
    add_filter_flags(listing)
    listing.add_argument("--page-size", type=positive_int, default=50, help="texts per page (default 50)")
    listing.add_argument("--page-token", default="", help="continue from a previous page")
    listing.add_argument("--all", action="store_true", help="every page")
    listing.set_defaults(run=list_texts)

    get = leaf(actions, "get", common, help="show one text with its lineage")
    add_name_argument(get)
    get.set_defaults(run=get_text)

    edit = leaf(actions, "edit", common, help="change a text and/or its tags")
    add_name_argument(edit)
    new_text = edit.add_mutually_exclusive_group()
    new_text.add_argument("--text", help="the new text")
    new_text.add_argument("--text-file", metavar="FILE", help="read the new text from FILE ('-' for stdin)")
    edit.add_argument("--add-tag", action="append", default=[], metavar="TAG", help="add a tag (repeatable)")
    edit.add_argument("--remove-tag", action="append", default=[], metavar="TAG", help="remove a tag (repeatable)")
    edit.set_defaults(run=edit_text)

    for action, handler, text in (
        ("discard", discard_texts, "mark texts as discarded"),
        ("restore", restore_texts, "bring discarded texts back to staged"),
    ):
        parser = leaf(actions, action, common, help=text)
        parser.add_argument("names", nargs="+", metavar="TEXT", help="projects/P/stagedTexts/ID, or ID with --project")
        parser.add_argument("--project", "-p", help="the project of bare text ids")
        parser.set_defaults(run=handler)

    importing = leaf(actions, "import", common, help="import texts as annotation tasks (tagged 'synthetic')")
    importing.add_argument("project", help="project id or projects/ID")
    importing.add_argument("names", nargs="*", metavar="TEXT", help="text ids or names (else use --job or a filter)")
    add_filter_flags(importing)
    importing.set_defaults(run=import_texts)

    export = leaf(actions, "export", common, help="download texts as CSV, JSON, JSONL or Label Studio JSON")
    export.add_argument("project", help="project id or projects/ID")
    add_export_flags(export)
    add_filter_flags(export)
    export.set_defaults(run=export_texts)


def add_export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=sorted(FORMATS), default="csv", help=FORMATS_HELP)
    parser.add_argument(
        "--out", metavar="FILE", help="where to write ('-' for stdout; default: the server's file name)"
    )
    parser.add_argument(
        "--from-name", default="", help="label-studio: name of the <Labels> tag of your labeling config (default label)"
    )
    parser.add_argument(
        "--to-name", default="", help="label-studio: name of the <Text> tag of your labeling config (default text)"
    )
    parser.add_argument(
        "--no-formula-guard",
        action="store_true",
        help="csv: keep texts verbatim (no ' before = + - @), for annotation tools rather than spreadsheets",
    )


def export_options_from_args(args: argparse.Namespace) -> pb.ExportOptions:
    options = pb.ExportOptions(label_studio_from_name=args.from_name, label_studio_to_name=args.to_name)
    if args.no_formula_guard:
        options.csv_formula_guard = False
    return options


def add_name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="TEXT", help="projects/P/stagedTexts/ID, or ID with --project")
    parser.add_argument("--project", "-p", help="the project of a bare text id")


def add_filter_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", help="only texts of this job (ID or projects/P/generationJobs/ID)")
    parser.add_argument("--state", choices=sorted(STATES), help="only texts in this state")
    parser.add_argument("--tag", help="only texts with this tag")
    parser.add_argument(
        "--duplicate", action=argparse.BooleanOptionalAction, default=None, help="only (or no) duplicates"
    )
    parser.add_argument("--query", help="case-insensitive substring of the text")


def filter_from_args(args: argparse.Namespace, project: str) -> pb.StagedTextFilter:
    found = pb.StagedTextFilter(
        generation_job=names.child(args.job, "generationJobs", project) if args.job else "",
        state=STATES.get(args.state or "", pb.STAGED_TEXT_STATE_UNSPECIFIED),
        tag=args.tag or "",
        query=args.query or "",
    )
    if args.duplicate is not None:
        found.duplicate = args.duplicate
    return found


def has_filter(args: argparse.Namespace) -> bool:
    return any(getattr(args, flag) not in (None, "") for flag in ("job", "state", "tag", "duplicate", "query"))


def text_names(values: list[str], project: str | None) -> tuple[str, list[str]]:
    """(parent, names) of texts given by name or id; all must be in one project."""
    found = [names.child(value, COLLECTION, project) for value in values]
    parents = {names.parent_of(name) for name in found}
    if len(parents) > 1:
        raise UsageError("give texts of one project at a time (" + ", ".join(sorted(parents)) + ")")
    return parents.pop(), found


def state_label(text: pb.StagedText) -> str:
    return enum_label(text.state, pb.StagedTextState, "STAGED_TEXT_STATE_")


def texts_table(texts: list[pb.StagedText]) -> Any:
    return table(
        ["TEXT ID", "STATE", "DUP", "TAGS", "TEXT"],
        [(names.short(t.name), state_label(t), "dup" if t.duplicate else "", ", ".join(t.tags), t.text) for t in texts],
    )


def text_details(text: pb.StagedText) -> Any:
    lineage = text.lineage
    return details(
        [
            ("name", text.name),
            ("state", state_label(text)),
            ("text", text.text),
            ("original text", text.original_text if text.original_text != text.text else ""),
            ("tags", ", ".join(text.tags)),
            ("spans", spans_summary(text.spans)),
            ("duplicate", "yes" if text.duplicate else ""),
            ("task", text.task),
            ("job", lineage.generation_job),
            ("provider", lineage.provider),
            ("model", lineage.model),
            ("temperature", f"{lineage.temperature:g}" if lineage.generation_job else ""),
            ("seed", lineage.seed if lineage.HasField("seed") else ""),
            ("variables", ", ".join(f"{k}={v}" for k, v in sorted(lineage.variables.items()))),
            (
                "tokens",
                f"{lineage.prompt_tokens} prompt + {lineage.completion_tokens} completion"
                if lineage.completion_tokens
                else "",
            ),
            ("finish reason", lineage.finish_reason),
            ("latency", seconds(lineage.latency)),
            ("generated", when(lineage.generate_time)),
            ("updated", when(text.update_time)),
            ("etag", text.etag),
        ]
    )


def spans_summary(spans: Any) -> str:
    """`DRUG 'Aspirin' [5, 12)`, one per span; offsets in code points, `?` when an edit put it in doubt."""
    return ", ".join(
        f"{span.label} {span.text!r} [{span.start}, {span.end}){' ?' if span.needs_review else ''}" for span in spans
    )


def fetch_texts(
    client: GatewayClient, request: pb.ListStagedTextsRequest, *, all_pages: bool
) -> tuple[list[pb.StagedText], str]:
    found: list[pb.StagedText] = []
    while True:
        reply = client.call(client.tasks.ListStagedTexts, request)
        found.extend(reply.staged_texts)
        if not all_pages or not reply.next_page_token:
            return found, "" if all_pages else reply.next_page_token
        request.page_token = reply.next_page_token


def list_texts(ctx: Context, args: argparse.Namespace) -> int:
    project = names.project(args.project)
    request = pb.ListStagedTextsRequest(
        parent=project, page_size=args.page_size, page_token=args.page_token, filter=filter_from_args(args, project)
    )
    found, next_token = fetch_texts(ctx.client, request, all_pages=args.all)

    def render(console: Console) -> None:
        console.print(texts_table(found) if found else f"No texts in {project} match.")
        if next_token:
            console.print(f"More: --page-token {next_token} (or --all)", markup=False)

    ctx.out.result(pb.ListStagedTextsResponse(staged_texts=found, next_page_token=next_token), render)
    return 0


def get_text(ctx: Context, args: argparse.Namespace) -> int:
    name = names.child(args.name, COLLECTION, args.project)
    reply = ctx.client.call(ctx.client.tasks.GetStagedText, pb.GetStagedTextRequest(name=name))
    ctx.out.result(reply, lambda console: console.print(text_details(reply.staged_text)))
    return 0


def edited_tags(current: list[str], add: list[str], remove: list[str]) -> list[str]:
    """Current tags minus `remove`, plus `add` not already there, in a stable order."""
    dropped = set(remove)
    tags = [tag for tag in current if tag not in dropped]
    for tag in add:
        if tag not in tags and tag not in dropped:
            tags.append(tag)
    return tags


def _read_new_text(args: argparse.Namespace) -> str | None:
    if args.text is not None:
        return args.text
    if args.text_file is None:
        return None
    if args.text_file == "-":
        return sys.stdin.read().rstrip("\n")
    try:
        return Path(args.text_file).read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise UsageError(f"cannot read {args.text_file}: {exc.strerror}") from None


def edit_text(ctx: Context, args: argparse.Namespace) -> int:
    name = names.child(args.name, COLLECTION, args.project)
    new_text = _read_new_text(args)
    if new_text is None and not args.add_tag and not args.remove_tag:
        raise UsageError("nothing to change: give --text/--text-file, --add-tag or --remove-tag")
    client = ctx.client
    for attempt in range(1, _EDIT_ATTEMPTS + 1):
        current = client.call(client.tasks.GetStagedText, pb.GetStagedTextRequest(name=name)).staged_text
        change = pb.StagedText(name=name, etag=current.etag)
        paths: list[str] = []
        if new_text is not None:
            change.text = new_text
            paths.append("text")
        if args.add_tag or args.remove_tag:
            change.tags[:] = edited_tags(list(current.tags), args.add_tag, args.remove_tag)
            paths.append("tags")
        try:
            reply = client.call(
                client.tasks.UpdateStagedText,
                pb.UpdateStagedTextRequest(staged_text=change, update_mask=FieldMask(paths=paths)),
            )
        except grpc.RpcError as exc:
            # Tag changes are re-applied on the newer version; a text replacement is not,
            # it would silently overwrite the other edit.
            if exc.code() == grpc.StatusCode.ABORTED and new_text is None and attempt < _EDIT_ATTEMPTS:
                continue
            raise
        ctx.out.result(reply, printing(text_details(reply.staged_text)))
        return 0
    raise AssertionError("unreachable")  # pragma: no cover


def _batch(ctx: Context, args: argparse.Namespace, method: str, request_type: Any, verb: str) -> int:
    parent, found = text_names(args.names, args.project)
    reply = ctx.client.call(getattr(ctx.client.tasks, method), request_type(parent=parent, names=found))

    def render(console: Console) -> None:
        console.print(f"{verb} {len(reply.staged_texts)} text(s)", markup=False)
        if reply.staged_texts:
            console.print(texts_table(list(reply.staged_texts)))

    ctx.out.result(reply, render)
    return 0


def discard_texts(ctx: Context, args: argparse.Namespace) -> int:
    return _batch(ctx, args, "DiscardStagedTexts", pb.DiscardStagedTextsRequest, "Discarded")


def restore_texts(ctx: Context, args: argparse.Namespace) -> int:
    return _batch(ctx, args, "RestoreStagedTexts", pb.RestoreStagedTextsRequest, "Restored")


def import_request(args: argparse.Namespace) -> pb.ImportStagedTextsRequest:
    project = names.project(args.project)
    if args.names and has_filter(args):
        raise UsageError("give either text names or a filter (--job, --state, …), not both")
    if args.names:
        parent, found = text_names(args.names, project)
        if parent != project:
            raise UsageError(f"the texts are not in {project}")
        return pb.ImportStagedTextsRequest(parent=project, names=found)
    if not has_filter(args):
        raise UsageError("say what to import: --job JOB, text names, or a filter such as --tag or --query")
    return pb.ImportStagedTextsRequest(parent=project, filter=filter_from_args(args, project))


def import_texts(ctx: Context, args: argparse.Namespace) -> int:
    request = import_request(args)
    reply = ctx.client.call(ctx.client.tasks.ImportStagedTexts, request)
    ctx.out.result(
        reply,
        lambda console: console.print(
            f"Imported {reply.created_count} text(s) as tasks into {request.parent}"
            + (f"; {reply.already_imported_count} were already imported" if reply.already_imported_count else ""),
            markup=False,
        ),
    )
    return 0


def export_to(
    client: GatewayClient,
    method: Any,
    request: pb.ExportStagedTextsRequest | pb.ExportTasksRequest,
    out: str | None,
    default_name: str,
) -> tuple[str, int]:
    """Stream the export into `out` chunk by chunk (constant memory); returns (path, bytes).

    The file appears only once complete: chunks go to `FILE.part`, renamed at the end,
    so a dropped stream never leaves a truncated file that looks finished."""
    chunks = client.stream(method, request)
    first = next(chunks, None)
    if out == "-":
        written = 0
        sink = sys.stdout.buffer
        for chunk in [first] if first is not None else []:
            sink.write(chunk.data)
            written += len(chunk.data)
        for chunk in chunks:
            sink.write(chunk.data)
            written += len(chunk.data)
        sink.flush()
        return "-", written
    path = Path(out or (first.file_name if first is not None and first.file_name else default_name))
    # A server-suggested name is used as a plain file name in the current folder, never as a path.
    if not out:
        path = Path(path.name)
    partial = path.with_name(path.name + ".part")
    written = 0
    try:
        with open(partial, "wb") as sink:
            if first is not None:
                sink.write(first.data)
                written += len(first.data)
            for chunk in chunks:
                sink.write(chunk.data)
                written += len(chunk.data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return str(path), written


def export_texts(ctx: Context, args: argparse.Namespace) -> int:
    project = names.project(args.project)
    request = pb.ExportStagedTextsRequest(
        parent=project,
        filter=filter_from_args(args, project),
        format=FORMATS[args.format],
        options=export_options_from_args(args),
    )
    path, size = export_to(
        ctx.client,
        ctx.client.tasks.ExportStagedTexts,
        request,
        args.out,
        f"{names.short(project)}-texts.{EXTENSIONS[args.format]}",
    )
    report_export(ctx, path, size)
    return 0


def report_export(ctx: Context, path: str, size: int) -> None:
    if path == "-":
        return
    where = Path(path).absolute()
    ctx.out.result(
        {"file": str(where), "bytes": size},
        lambda console: console.print(f"Exported {size} bytes to {where}", markup=False),
    )
