"""Small builders for task store requests and for checking failed calls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
import psycopg
import pytest
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.rich_status import error_info_reason, field_violations

PROVIDER = "providers/openai-main"


def create_job(
    jobs, project: str, *, text_count: int = 3, tags: Sequence[str] = (), request_id: str = "", **fields
) -> generation_pb2.GenerationJob:
    fields.setdefault("prompt", "Write a sentence about {city}.")
    fields.setdefault("temperature", 0.7)
    job = generation_pb2.GenerationJob(text_count=text_count, tags=list(tags), provider=PROVIDER, **fields)
    reply = jobs.CreateJob(
        job_store_pb2.CreateJobRequest(parent=f"projects/{project}", generation_job=job, request_id=request_id)
    )
    return reply.generation_job


def text(slot: int, body: str, *, reject_duplicate: bool = False, **fields) -> job_store_pb2.SlotResult:
    return job_store_pb2.SlotResult(
        slot=slot, text=job_store_pb2.GeneratedText(text=body, **fields), reject_duplicate=reject_duplicate
    )


def failure(
    slot: int, reason: int = generation_pb2.FAILURE_REASON_TIMEOUT, message: str = "timed out"
) -> job_store_pb2.SlotResult:
    return job_store_pb2.SlotResult(slot=slot, failure=generation_pb2.JobError(reason=reason, message=message))


def append(jobs, name: str, *results: job_store_pb2.SlotResult, **fields) -> job_store_pb2.AppendResultsResponse:
    return jobs.AppendResults(job_store_pb2.AppendResultsRequest(name=name, results=list(results), **fields))


def staged_job(jobs, project: str, bodies: Sequence[str], *, tags: Sequence[str] = ()) -> str:
    """A finished job holding one staged text per body; its name."""
    job = create_job(jobs, project, text_count=len(bodies), tags=tags)
    append(jobs, job.name, *(text(slot, body) for slot, body in enumerate(bodies)))
    return job.name


def list_all_texts(tasks, project: str, **filter_fields) -> list[task_pb2.StagedText]:
    found: list[task_pb2.StagedText] = []
    token = ""
    while True:
        reply = tasks.ListStagedTexts(
            task_pb2.ListStagedTextsRequest(
                parent=f"projects/{project}",
                page_size=100,
                page_token=token,
                filter=task_pb2.StagedTextFilter(**filter_fields),
            )
        )
        found.extend(reply.staged_texts)
        token = reply.next_page_token
        if not token:
            return found


def export_bytes(
    tasks,
    project: str,
    export_format: int = task_pb2.EXPORT_FORMAT_UNSPECIFIED,
    *,
    options: task_pb2.ExportOptions | None = None,
    **filter_fields,
):
    chunks = list(
        tasks.ExportStagedTexts(
            task_pb2.ExportStagedTextsRequest(
                parent=f"projects/{project}",
                format=export_format,
                filter=task_pb2.StagedTextFilter(**filter_fields),
                options=options,
            )
        )
    )
    return chunks, b"".join(chunk.data for chunk in chunks)


@dataclass
class Failure:
    error: grpc.RpcError | None = None

    @property
    def code(self) -> grpc.StatusCode:
        return self.error.code()

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in field_violations(self.error)]

    @property
    def reason(self) -> str | None:
        return error_info_reason(self.error)

    @property
    def message(self) -> str:
        return self.error.details() or ""


@contextlib.contextmanager
def fails_with(code: grpc.StatusCode, *, field: str | None = None, reason: str | None = None) -> Iterator[Failure]:
    """Expect the block's call to fail with `code` (and the violated `field` / `reason`)."""
    failure_seen = Failure()
    with pytest.raises(grpc.RpcError) as caught:
        yield failure_seen
    failure_seen.error = caught.value
    assert failure_seen.code == code, f"{failure_seen.code}: {failure_seen.message}"
    if field is not None:
        assert failure_seen.fields == [field], failure_seen.message
    if reason is not None:
        assert failure_seen.reason == reason


def row_counts(db: psycopg.Connection, project: str) -> dict[str, int]:
    """How many rows of each table belong to `project`: compared before and after
    refused calls to show that nothing was written."""
    query = (
        "SELECT (SELECT count(*) FROM generation_jobs WHERE project = %(p)s) AS jobs,"
        " (SELECT count(*) FROM staged_texts WHERE project = %(p)s) AS texts,"
        " (SELECT count(*) FROM failed_slots f JOIN generation_jobs j ON j.id = f.job_id"
        " WHERE j.project = %(p)s) AS failures,"
        " (SELECT count(*) FROM tasks WHERE project = %(p)s) AS tasks,"
        " (SELECT coalesce(sum(version), 0) FROM staged_texts WHERE project = %(p)s) AS text_versions,"
        " (SELECT coalesce(sum(version), 0) FROM generation_jobs WHERE project = %(p)s) AS job_versions,"
        " (SELECT coalesce(sum(version), 0) FROM tasks WHERE project = %(p)s) AS task_versions"
    )
    row = db.execute(query, {"p": project}).fetchone()
    names = ("jobs", "texts", "failures", "tasks", "text_versions", "job_versions", "task_versions")
    return dict(zip(names, row, strict=True))
