"""The columns the repositories read and how a row becomes a record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from services.runtime.errors import NotFound
from services.task_store.records import (
    EntityLabel,
    Job,
    JobError,
    JobState,
    Page,
    Prediction,
    PromptVariable,
    Span,
    StagedText,
    Task,
    TextState,
)

JOB_COLUMNS = sql.SQL(
    "j.id, j.seq, j.project, j.request_id, j.prompt, j.system_prompt, j.temperature, j.text_count,"
    " j.provider, j.model, j.max_output_tokens, j.seed, j.tags, j.variables, j.is_unique, j.labels,"
    " j.variable_labels, j.prompt_hash, j.state, j.produced, j.failed, j.duplicates, j.dropped_spans,"
    " j.prompt_tokens, j.completion_tokens, j.error_reason,"
    " j.error_message, j.enqueued, j.version, j.create_time, j.start_time, j.end_time, j.update_time"
)
TEXT_COLUMNS = sql.SQL(
    "s.id, s.seq, s.project, s.job_id, s.slot, s.text, coalesce(s.original_text, s.text) AS original_text,"
    " s.tags, s.state, s.duplicate, s.spans,"
    " s.task_id, j.provider, j.temperature, j.seed, j.prompt_hash, s.model, s.variables, s.prompt_tokens,"
    " s.completion_tokens, s.finish_reason, s.latency_us, s.generate_time, s.version, s.create_time,"
    " s.update_time"
)
TEXTS_FROM = sql.SQL("staged_texts s JOIN generation_jobs j ON j.id = s.job_id")
TASK_COLUMNS = sql.SQL(
    "t.id, t.seq, t.project, t.text, t.tags, t.staged_text_id, t.job_id, t.predictions, t.version, t.create_time,"
    " t.update_time"
)


def one_row(cur: psycopg.Cursor[DictRow], what: str) -> dict[str, Any]:
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"{what} does not exist")
    return row


def page_of(items: list, limit: int) -> Page:
    if len(items) > limit:
        items = items[:limit]
        return Page(items, items[-1].seq)
    return Page(items, None)


def job_from_row(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        seq=row["seq"],
        project=row["project"],
        request_id=row["request_id"] or "",
        prompt=row["prompt"],
        system_prompt=row["system_prompt"],
        temperature=row["temperature"],
        text_count=row["text_count"],
        provider=row["provider"],
        model=row["model"],
        max_output_tokens=row["max_output_tokens"],
        seed=row["seed"],
        tags=tuple(row["tags"]),
        variables=tuple(PromptVariable(v["name"], tuple(v["values"])) for v in row["variables"]),
        unique=row["is_unique"],
        labels=tuple(EntityLabel(label["name"], label["description"]) for label in row["labels"]),
        variable_labels=row["variable_labels"],
        prompt_hash=row["prompt_hash"],
        state=JobState(row["state"]),
        produced=row["produced"],
        failed=row["failed"],
        duplicates=row["duplicates"],
        dropped_spans=row["dropped_spans"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        error=JobError(row["error_reason"], row["error_message"]) if row["error_reason"] else None,
        enqueued=row["enqueued"],
        version=row["version"],
        create_time=row["create_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        update_time=row["update_time"],
    )


def text_from_row(row: dict[str, Any]) -> StagedText:
    return StagedText(
        id=row["id"],
        seq=row["seq"],
        project=row["project"],
        job_id=row["job_id"],
        slot=row["slot"],
        text=row["text"],
        original_text=row["original_text"],
        tags=tuple(row["tags"]),
        state=TextState(row["state"]),
        duplicate=row["duplicate"],
        task_id=row["task_id"],
        spans=tuple(Span.from_json(span) for span in row["spans"]),
        provider=row["provider"],
        temperature=row["temperature"],
        seed=row["seed"],
        prompt_hash=row["prompt_hash"],
        model=row["model"],
        variables=row["variables"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        finish_reason=row["finish_reason"],
        latency_us=row["latency_us"],
        generate_time=row["generate_time"],
        version=row["version"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def task_from_row(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"],
        seq=row["seq"],
        project=row["project"],
        text=row["text"],
        tags=tuple(row["tags"]),
        staged_text_id=row["staged_text_id"],
        job_id=row["job_id"],
        predictions=tuple(Prediction.from_json(prediction) for prediction in row["predictions"]),
        version=row["version"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def spans_json(spans: Sequence[Span]) -> str:
    return json.dumps([span.as_json() for span in spans], ensure_ascii=False)
