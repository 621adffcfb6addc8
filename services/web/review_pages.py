"""Review staged texts (filters, pages, edit with etag, tags, discard/restore, import),
download them, and list the project's tasks.

Lists follow the gateway's page tokens: a page shows `page_size` rows and a link to the
next page, so a project with 100,000 texts costs the same as one with 100."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from services.web.gateway import GatewayError
from services.web.visits import Visit, safe_return_path

_STATES = {
    "staged": task_pb.STAGED_TEXT_STATE_STAGED,
    "imported": task_pb.STAGED_TEXT_STATE_IMPORTED,
    "discarded": task_pb.STAGED_TEXT_STATE_DISCARDED,
}
_FORMATS = {
    "csv": task_pb.EXPORT_FORMAT_CSV,
    "json": task_pb.EXPORT_FORMAT_JSON,
    "jsonl": task_pb.EXPORT_FORMAT_JSONL,
    "label-studio": task_pb.EXPORT_FORMAT_LABEL_STUDIO,
}
_FILTER_KEYS = ("job", "state", "tag", "duplicate", "q")


def _filters(request: Request) -> dict[str, str]:
    return {key: request.query_params.get(key, "").strip() for key in _FILTER_KEYS}


def _text_filter(project: str, filters: dict[str, str]) -> task_pb.StagedTextFilter:
    found = task_pb.StagedTextFilter(
        generation_job=f"projects/{project}/generationJobs/{filters['job']}" if filters["job"] else "",
        state=_STATES.get(filters["state"], task_pb.STAGED_TEXT_STATE_UNSPECIFIED),
        tag=filters["tag"],
        query=filters["q"],
    )
    if filters["duplicate"] in ("yes", "no"):
        found.duplicate = filters["duplicate"] == "yes"
    return found


def _text_name(project: str, text_id: str) -> str:
    return f"projects/{project}/stagedTexts/{text_id}"


async def texts_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    filters = _filters(request)
    page = request.query_params.get("page", "")
    gateway = visit.web.gateway
    reply = await gateway.call(
        gateway.tasks.ListStagedTexts,
        task_pb.ListStagedTextsRequest(
            parent=f"projects/{project}",
            page_size=visit.web.settings.page_size,
            page_token=page,
            filter=_text_filter(project, filters),
        ),
        token,
    )
    # The newest jobs, for the job filter's menu.
    jobs = await gateway.call(
        gateway.generation.ListGenerationJobs,
        gen_pb.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=20),
        token,
    )
    query = urlencode({k: v for k, v in filters.items() if v})
    return visit.render(
        "texts.html",
        {
            "texts": reply.staged_texts,
            "next_page": reply.next_page_token,
            "first_page": not page,
            "filters": filters,
            "filter_query": query,
            "jobs": jobs.generation_jobs,
        },
    )


async def _update(visit: Visit, token: str, text: task_pb.StagedText, paths: list[str]) -> task_pb.StagedText:
    reply = await visit.web.gateway.call(
        visit.web.gateway.tasks.UpdateStagedText,
        task_pb.UpdateStagedTextRequest(staged_text=text, update_mask=FieldMask(paths=paths)),
        token,
    )
    return reply.staged_text


async def _conflict(visit: Visit, token: str, name: str, mine: str, back: str) -> Response:
    """Someone else changed the text since this page was loaded: show both versions."""
    current = await visit.web.gateway.call(
        visit.web.gateway.tasks.GetStagedText, task_pb.GetStagedTextRequest(name=name), token
    )
    return visit.render("conflict.html", {"current": current.staged_text, "mine": mine, "back": back}, status_code=409)


async def edit_text(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    form = await visit.form()
    name = _text_name(project, request.path_params["text"])
    back = safe_return_path(str(form.get("back", "")), f"/p/{project}/texts")
    mine = str(form.get("text", ""))
    try:
        await _update(visit, token, task_pb.StagedText(name=name, text=mine, etag=str(form.get("etag", ""))), ["text"])
    except GatewayError as error:
        if error.code == grpc.StatusCode.ABORTED:
            return await _conflict(visit, token, name, mine, back)
        if error.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return visit.redirect(back, notice=f"Not saved: {error.describe()}")
        raise
    return visit.redirect(back, notice="Saved.")


async def tag_text(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    form = await visit.form()
    name = _text_name(project, request.path_params["text"])
    back = safe_return_path(str(form.get("back", "")), f"/p/{project}/texts")
    current = (
        await visit.web.gateway.call(
            visit.web.gateway.tasks.GetStagedText, task_pb.GetStagedTextRequest(name=name), token
        )
    ).staged_text
    tags = list(current.tags)
    added = [t.strip() for t in str(form.get("add", "")).split(",") if t.strip()]
    removed = str(form.get("remove", "")).strip()
    tags = [t for t in tags if t != removed] + [t for t in added if t not in tags]
    try:
        # The etag the page was rendered with: a change made meanwhile is a conflict, not lost.
        await _update(visit, token, task_pb.StagedText(name=name, tags=tags, etag=str(form.get("etag", ""))), ["tags"])
    except GatewayError as error:
        if error.code == grpc.StatusCode.ABORTED:
            return visit.redirect(
                back, notice="Someone changed this text meanwhile; its tags are shown as they are now."
            )
        if error.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return visit.redirect(back, notice=f"Tags not saved: {error.describe()}")
        raise
    return visit.redirect(back, notice="Tags saved.")


async def batch(request: Request) -> Response:
    """Discard, restore or import the selected texts."""
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    form = await visit.form()
    back = safe_return_path(str(form.get("back", "")), f"/p/{project}/texts")
    action = str(form.get("action", ""))
    names = [_text_name(project, str(t)) for t in form.getlist("text")]
    if not names:
        return visit.redirect(back, notice="Select at least one text first.")
    tasks = visit.web.gateway.tasks
    parent = f"projects/{project}"
    if action == "discard":
        await visit.web.gateway.call(
            tasks.DiscardStagedTexts, task_pb.DiscardStagedTextsRequest(parent=parent, names=names), token
        )
        notice = f"Discarded {len(names)} text(s)."
    elif action == "restore":
        await visit.web.gateway.call(
            tasks.RestoreStagedTexts, task_pb.RestoreStagedTextsRequest(parent=parent, names=names), token
        )
        notice = f"Restored {len(names)} text(s)."
    elif action == "import":
        reply = await visit.web.gateway.call(
            tasks.ImportStagedTexts, task_pb.ImportStagedTextsRequest(parent=parent, names=names), token
        )
        notice = f"Imported {reply.created_count} text(s) as tasks ({reply.already_imported_count} already were)."
    else:
        return visit.redirect(back, notice="Unknown action.")
    return visit.redirect(back, notice=notice)


async def import_job(request: Request) -> Response:
    """Import every staged text of one job."""
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    form = await visit.form()
    job = str(form.get("job", ""))
    back = safe_return_path(str(form.get("back", "")), f"/p/{project}/texts")
    reply = await visit.web.gateway.call(
        visit.web.gateway.tasks.ImportStagedTexts,
        task_pb.ImportStagedTextsRequest(
            parent=f"projects/{project}",
            filter=task_pb.StagedTextFilter(
                generation_job=f"projects/{project}/generationJobs/{job}", state=task_pb.STAGED_TEXT_STATE_STAGED
            ),
        ),
        token,
    )
    return visit.redirect(
        back, notice=f"Imported {reply.created_count} text(s) as tasks ({reply.already_imported_count} already were)."
    )


async def export(request: Request) -> Response:
    """The filtered texts as a file, streamed from the gateway chunk by chunk."""
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    file_format = request.query_params.get("format", "csv")
    stream = visit.web.gateway.stream(
        visit.web.gateway.tasks.ExportStagedTexts,
        task_pb.ExportStagedTextsRequest(
            parent=f"projects/{project}",
            filter=_text_filter(project, _filters(request)),
            format=_FORMATS.get(file_format, task_pb.EXPORT_FORMAT_CSV),
        ),
        token,
    )
    # The first chunk names the file and its type; failing before it still shows an error page.
    first = await anext(stream, None)
    content_type = first.content_type if first is not None and first.content_type else "text/csv"
    file_name = first.file_name if first is not None and first.file_name else f"{project}-texts.{file_format}"
    # The name goes into a header: keep it to characters that cannot end or split it.
    file_name = re.sub(r"[^A-Za-z0-9._-]", "_", file_name)

    async def body():
        if first is not None:
            yield first.data
        async for chunk in stream:
            yield chunk.data

    response = StreamingResponse(
        body(),
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )
    return visit.finish(response)


async def tasks_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    tag = request.query_params.get("tag", "").strip()
    page = request.query_params.get("page", "")
    reply = await visit.web.gateway.call(
        visit.web.gateway.tasks.ListTasks,
        task_pb.ListTasksRequest(
            parent=f"projects/{project}", page_size=visit.web.settings.page_size, page_token=page, tag=tag
        ),
        token,
    )
    return visit.render(
        "tasks.html", {"tasks": reply.tasks, "next_page": reply.next_page_token, "first_page": not page, "tag": tag}
    )
