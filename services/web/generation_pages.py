"""Generate texts, list jobs, watch one live (server-sent events fed by
WatchGenerationJob) and cancel it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import grpc
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from services.web.errors import TooManyStreams
from services.web.gateway import GatewayError
from services.web.presentation import job_summary, text_summary
from services.web.project_choices import project_choices
from services.web.visits import Visit, checked_project_id

_JOB_PREFIX = "generation_job."
# Failures of a live stream that a reconnect (EventSource retries by itself) may cure.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _job_name(project: str, job_id: str) -> str:
    return f"projects/{project}/generationJobs/{job_id}"


def _split_list(raw: str) -> list[str]:
    """Values typed one per line, or separated by commas on one line."""
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = [part.strip() for part in lines[0].split(",") if part.strip()]
    return lines


def _form_values(form: FormData) -> dict:
    names = [str(n) for n in form.getlist("variable_name")]
    values = [str(v) for v in form.getlist("variable_values")]
    return {
        "prompt": str(form.get("prompt", "")),
        "system_prompt": str(form.get("system_prompt", "")),
        "provider": str(form.get("provider", "")),
        "temperature": str(form.get("temperature", "0.9")),
        "text_count": str(form.get("text_count", "20")),
        "unique": form.get("unique") == "on",
        "max_output_tokens": str(form.get("max_output_tokens", "")),
        "seed": str(form.get("seed", "")),
        "tags": str(form.get("tags", "")),
        "request_id": str(form.get("request_id", "")) or uuid.uuid4().hex,
        "variables": list(zip(names, values, strict=False)),
    }


def _number(values: dict, field: str, kind: type, errors: dict[str, str], default=0):
    raw = values[field].strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        errors[field] = "must be a number" if kind is float else "must be a whole number"
        return default


async def _providers(visit: Visit, project: str, token: str) -> list:
    reply = await visit.web.gateway.call(
        visit.web.gateway.providers.ListProjectProviders,
        provider_pb.ListProjectProvidersRequest(project=f"projects/{project}"),
        token,
    )
    return list(reply.project_providers)


async def generate_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    providers = await _providers(visit, project, token)
    default = next((p.provider.name for p in providers if p.default), "")
    values: dict = {
        "prompt": "",
        "system_prompt": "",
        "provider": default,
        "temperature": "0.9",
        "text_count": "20",
        "unique": False,
        "max_output_tokens": "",
        "seed": "",
        "tags": "",
        "request_id": uuid.uuid4().hex,
        "variables": [],
    }
    choices = await project_choices(visit, token)
    page = {"choices": choices, "providers": providers, "values": values, "errors": {}}
    return visit.render("generate.html", page)


async def switch_project(request: Request) -> Response:
    """The generate page's project choice (a GET form): that project's generate page,
    whose providers are the new project's."""
    visit = await Visit.open(request)
    visit.require_user()
    project = checked_project_id(request.query_params.get("project", "").strip())
    return visit.redirect(f"/p/{project}/generate")


async def create_job(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    values = _form_values(await visit.form())
    errors: dict[str, str] = {}
    temperature = _number(values, "temperature", float, errors, 0.0)
    text_count = _number(values, "text_count", int, errors)
    max_output_tokens = _number(values, "max_output_tokens", int, errors)
    seed = _number(values, "seed", int, errors, None)
    message = ""
    if not errors:
        job = gen_pb.GenerationJob(
            prompt=values["prompt"],
            system_prompt=values["system_prompt"],
            provider=values["provider"],
            temperature=temperature,
            text_count=text_count,
            max_output_tokens=max_output_tokens,
            unique=values["unique"],
            tags=[t.strip() for t in values["tags"].split(",") if t.strip()],
            variables=[gen_pb.PromptVariable(name=name, values=_split_list(raw)) for name, raw in values["variables"]],
        )
        if seed is not None:
            job.seed = seed
        try:
            reply = await visit.web.gateway.call(
                visit.web.gateway.generation.CreateGenerationJob,
                gen_pb.CreateGenerationJobRequest(
                    parent=f"projects/{project}", generation_job=job, request_id=values["request_id"]
                ),
                token,
            )
        except GatewayError as error:
            if not error.field_errors and error.code not in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ):
                raise
            errors = {field.removeprefix(_JOB_PREFIX): text for field, text in error.field_errors.items()}
            message = error.describe()
        else:
            job_id = reply.generation_job.name.rsplit("/", 1)[-1]
            return visit.redirect(f"/p/{project}/jobs/{job_id}")
    providers = await _providers(visit, project, token)
    choices = await project_choices(visit, token)
    return visit.render(
        "generate.html",
        {"choices": choices, "providers": providers, "values": values, "errors": errors, "message": message},
        status_code=400,
    )


async def jobs_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    page = request.query_params.get("page", "")
    reply = await visit.web.gateway.call(
        visit.web.gateway.generation.ListGenerationJobs,
        gen_pb.ListGenerationJobsRequest(
            parent=f"projects/{project}", page_size=visit.web.settings.page_size, page_token=page
        ),
        token,
    )
    return visit.render(
        "jobs.html", {"jobs": reply.generation_jobs, "next_page": reply.next_page_token, "first_page": not page}
    )


async def job_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    name = _job_name(project, request.path_params["job"])
    job = (
        await visit.web.gateway.call(
            visit.web.gateway.generation.GetGenerationJob, gen_pb.GetGenerationJobRequest(name=name), token
        )
    ).generation_job
    texts = await visit.web.gateway.call(
        visit.web.gateway.tasks.ListStagedTexts,
        task_pb.ListStagedTextsRequest(
            parent=f"projects/{project}",
            page_size=visit.web.settings.page_size,
            filter=task_pb.StagedTextFilter(generation_job=name),
        ),
        token,
    )
    # The live stream carries the balance from its first event; a finished job has no
    # stream, so the page starts from the exact count.
    balance = None
    if job.labels:
        balance = (
            await visit.web.gateway.call(
                visit.web.gateway.generation.GetEntityBalance, gen_pb.GetEntityBalanceRequest(scope=name), token
            )
        ).entity_balance
    return visit.render(
        "job.html",
        {
            "job": job,
            "summary": job_summary(job, balance),
            "texts": texts.staged_texts,
            "more_texts": texts.next_page_token,
        },
    )


async def job_events(request: Request) -> Response:
    """Server-sent events: `job` (counts, state, rate, entity balance) on every change,
    `text` for each new staged text, `end` when the job has finished."""
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    name = _job_name(project, request.path_params["job"])
    lease = visit.web.streams.acquire(visit.session.sid)
    if lease is None:
        raise TooManyStreams(
            f"You have {visit.web.settings.max_streams_per_session} live job views open; close one first."
        )

    async def events() -> AsyncIterator[dict]:
        finished = False
        try:
            async for reply in visit.web.gateway.stream(
                visit.web.gateway.generation.WatchGenerationJob, gen_pb.WatchGenerationJobRequest(name=name), token
            ):
                if reply.HasField("staged_text"):
                    yield {"event": "text", "data": json.dumps(text_summary(reply.staged_text))}
                summary = job_summary(
                    reply.generation_job, reply.entity_balance if reply.HasField("entity_balance") else None
                )
                yield {"event": "job", "data": json.dumps(summary)}
                if summary["finished"]:
                    finished = True
                    break
        except GatewayError as error:
            if error.code not in _TRANSIENT:
                yield {"event": "failure", "data": json.dumps({"message": error.describe()})}
                return
        finally:
            lease.release()
        if finished:
            yield {"event": "end", "data": "{}"}
        # Otherwise the gateway's stream ended early (a restart, a transient fault): ending
        # the response without `end` makes the browser's EventSource reconnect by itself.

    # The background task releases the lease too when the browser left before the first event.
    return EventSourceResponse(
        events(), ping=15, headers={"Cache-Control": "no-store"}, background=BackgroundTask(lease.release)
    )


async def cancel_job(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    project = visit.project()
    await visit.form()
    job_id = request.path_params["job"]
    await visit.web.gateway.call(
        visit.web.gateway.generation.CancelGenerationJob,
        gen_pb.CancelGenerationJobRequest(name=_job_name(project, job_id)),
        token,
    )
    return visit.redirect(f"/p/{project}/jobs/{job_id}", notice="The job is cancelled; texts already made stay.")
