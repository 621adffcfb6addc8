"""SQL of staged texts: listing, export pages, edits, discard and restore, and import
into tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from services.runtime.errors import Aborted, FailedPrecondition, NotFound
from services.task_store import spans
from services.task_store.records import ImportResult, Page, Span, StagedText, TextChange, TextFilter, TextState
from services.task_store.repository.rows import (
    TEXT_COLUMNS,
    TEXTS_FROM,
    one_row,
    page_of,
    spans_json,
    text_from_row,
)
from services.task_store.repository.transactions import PooledRepository
from services.task_store.validation import SYNTHETIC_TAG
from services.vocabulary.names import staged_text_name
from services.vocabulary.reasons import Reason

# One page of an export: at most this many texts, and no more text than this beyond the
# page's first text (a text and its original are at most 20,000 characters each: 160 KB).
EXPORT_PAGE_ROWS = 200
EXPORT_PAGE_BYTES = 1024 * 1024


class StagedTextRepository(PooledRepository):
    def list_texts(self, project: str, text_filter: TextFilter, before_seq: int | None, limit: int) -> Page:
        where, params = _text_conditions(project, text_filter)
        if before_seq is not None:
            where = sql.SQL("{} AND s.seq < %(before)s").format(where)
            params["before"] = before_seq
        params["limit"] = limit + 1
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY s.seq DESC LIMIT %(limit)s").format(
                    TEXT_COLUMNS, TEXTS_FROM, where
                ),
                params,
            )
            return page_of([text_from_row(row) for row in cur.fetchall()], limit)

    def iter_texts(
        self,
        project: str,
        text_filter: TextFilter,
        *,
        page_rows: int = EXPORT_PAGE_ROWS,
        page_bytes: int = EXPORT_PAGE_BYTES,
    ) -> Generator[StagedText, None, None]:
        """Every matching text in write order, one keyset page at a time: each page is
        one short transaction whose connection goes back to the pool before any text of
        it is yielded. A consumer that stops reading therefore holds no connection and
        no transaction, only the page in hand: at most `page_rows` texts and, beyond the
        first text, `page_bytes` of text. Pages are separate snapshots: a text written
        while the export runs is included when its seq comes after the page in hand."""
        where, params = _text_conditions(project, text_filter)
        params.update(rows=page_rows, budget=page_bytes, after=0)
        query = sql.SQL(
            "SELECT * FROM ("
            " SELECT page.*, sum(page.row_bytes) OVER (ORDER BY page.seq) AS running_bytes FROM ("
            "  SELECT {}, octet_length(s.text) + coalesce(octet_length(s.original_text), 0) AS row_bytes"
            "  FROM {} WHERE {} AND s.seq > %(after)s ORDER BY s.seq LIMIT %(rows)s"
            " ) page"
            ") sized WHERE sized.running_bytes - sized.row_bytes < %(budget)s ORDER BY sized.seq"
        ).format(TEXT_COLUMNS, TEXTS_FROM, where)
        while True:
            with self._cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
            page = [text_from_row(row) for row in rows]  # converted after the commit: the transaction stays short
            yield from page
            if not page:
                return
            params["after"] = page[-1].seq

    def get_text(self, project: str, text_id: str) -> StagedText:
        with self._cursor() as cur:
            return self._text_in(cur, project, text_id)

    def update_text(self, project: str, text_id: str, change: TextChange, expected_version: int | None) -> StagedText:
        """Apply `change`; ABORTED when `expected_version` is given and is not the current one."""
        name = staged_text_name(project, text_id)
        with self._cursor() as cur:
            cur.execute(
                "SELECT s.state, s.version, s.text, s.spans, j.labels FROM staged_texts s"
                " JOIN generation_jobs j ON j.id = s.job_id WHERE s.project = %s AND s.id = %s FOR UPDATE OF s",
                (project, text_id),
            )
            row = one_row(cur, name)
            if row["state"] == TextState.IMPORTED.value:
                raise FailedPrecondition(f"{name} is imported and read-only", reason=Reason.STAGED_TEXT_IMPORTED)
            if expected_version is not None and expected_version != row["version"]:
                raise Aborted(f"{name} changed since it was read (stale etag); read it again and retry")
            new_spans = spans.after_edit(
                row["text"],
                [Span.from_json(span) for span in row["spans"]],
                new_text=change.text,
                new_spans=change.spans,
                labels={label["name"] for label in row["labels"]},
                field="staged_text.spans",
            )
            cur.execute(
                # Right-hand sides see the row as it was: the first edit keeps the generated text.
                "UPDATE staged_texts SET"
                " original_text = CASE WHEN %(text)s::text IS NULL THEN original_text"
                " ELSE coalesce(original_text, text) END,"
                " text = coalesce(%(text)s, text), tags = coalesce(%(tags)s::text[], tags),"
                " spans = coalesce(%(spans)s::jsonb, spans),"
                " version = version + 1, update_time = now() WHERE id = %(id)s",
                {
                    "text": change.text,
                    "tags": list(change.tags) if change.tags is not None else None,
                    "spans": spans_json(new_spans) if new_spans is not None else None,
                    "id": text_id,
                },
            )
            return self._text_in(cur, project, text_id)

    def set_texts_state(self, project: str, targets: Sequence[tuple[str, str]], state: TextState) -> list[StagedText]:
        """Discard or restore texts; `targets` are (request field, text id) pairs.

        All or nothing: an unknown or imported text refuses the whole batch."""
        ids = list(dict.fromkeys(text_id for _, text_id in targets))
        with self._cursor() as cur:
            current = self._lock_texts(cur, project, ids)
            for field, text_id in targets:
                found = current.get(text_id)
                if found is None:
                    raise NotFound(f"{field}: {staged_text_name(project, text_id)} does not exist")
                if found == TextState.IMPORTED.value:
                    raise FailedPrecondition(
                        f"{field}: {staged_text_name(project, text_id)} is imported and read-only",
                        reason=Reason.STAGED_TEXT_IMPORTED,
                    )
            cur.execute(
                "UPDATE staged_texts SET state = %s, version = version + 1, update_time = now()"
                " WHERE id = ANY(%s::text[]) AND state <> %s",
                (state.value, ids, state.value),
            )
            cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE s.id = ANY(%s::text[])").format(TEXT_COLUMNS, TEXTS_FROM), (ids,)
            )
            by_id = {row["id"]: text_from_row(row) for row in cur.fetchall()}
            return [by_id[text_id] for _, text_id in targets]

    def import_texts(
        self,
        project: str,
        *,
        targets: Sequence[tuple[str, str]] | None = None,
        text_filter: TextFilter | None = None,
    ) -> ImportResult:
        """Create a task for each STAGED text chosen by `targets` (field, id) or by
        `text_filter`, and mark the texts IMPORTED: all in one transaction.

        Concurrent imports of the same texts create each task once: the candidates are
        locked in seq order, a waiting import re-reads them as IMPORTED and skips them,
        and tasks.staged_text_id is UNIQUE in case anything else slips through."""
        with self._cursor() as cur:
            if targets is not None:
                ids = list(dict.fromkeys(text_id for _, text_id in targets))
                current = self._lock_texts(cur, project, ids)
                for field, text_id in targets:
                    found = current.get(text_id)
                    if found is None:
                        raise NotFound(f"{field}: {staged_text_name(project, text_id)} does not exist")
                    if found == TextState.DISCARDED.value:
                        raise FailedPrecondition(
                            f"{field}: {staged_text_name(project, text_id)} is discarded; restore it first",
                            reason=Reason.STAGED_TEXT_DISCARDED,
                        )
                already = sum(1 for text_id in ids if current[text_id] == TextState.IMPORTED.value)
                where: sql.Composable = sql.SQL("s.project = %(project)s AND s.id = ANY(%(ids)s::text[])")
                params: dict[str, Any] = {"project": project, "ids": ids}
            else:
                # Import takes STAGED texts whatever the filter says, and counts the
                # IMPORTED ones it matches: the filter's own state would contradict both.
                where, params = _text_conditions(project, dataclasses.replace(text_filter or TextFilter(), state=None))
            params["synthetic"] = SYNTHETIC_TAG
            # A whole project's import sorts its candidates: keep the sort in memory.
            cur.execute("SET LOCAL work_mem = '64MB'")
            cur.execute(
                sql.SQL(
                    "WITH candidates AS ("
                    "  SELECT s.id, s.project, s.text, s.tags, s.job_id, s.seq, s.model, s.spans FROM staged_texts s"
                    "  WHERE {where} AND s.state = 'STAGED' ORDER BY s.seq FOR UPDATE"
                    "), annotated AS ("
                    # The spans become one prediction of the model that wrote the text,
                    # without those an edit put in doubt (spans.reviewed); texts without
                    # spans (most imports) skip the JSON work.
                    "  SELECT c.*, CASE WHEN c.spans = '[]'::jsonb THEN '[]'::jsonb ELSE ("
                    "    SELECT coalesce(jsonb_agg(x ORDER BY n), '[]'::jsonb)"
                    "    FROM jsonb_array_elements(c.spans) WITH ORDINALITY AS e(x, n)"
                    "    WHERE NOT coalesce((x ->> 'needs_review')::boolean, false)"
                    "  ) END AS reviewed FROM candidates c"
                    "), created AS ("
                    "  INSERT INTO tasks (id, project, text, tags, staged_text_id, job_id, predictions)"
                    "  SELECT replace(gen_random_uuid()::text, '-', ''), c.project, c.text,"
                    "    CASE WHEN %(synthetic)s = ANY(c.tags) THEN c.tags ELSE c.tags || %(synthetic)s::text END,"
                    "    c.id, c.job_id,"
                    "    CASE WHEN c.reviewed = '[]'::jsonb THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object("
                    "      'model_version', c.model, 'job', c.job_id, 'spans', c.reviewed)) END"
                    "  FROM annotated c ORDER BY c.seq"
                    "  ON CONFLICT ON CONSTRAINT tasks_staged_text DO NOTHING"
                    "  RETURNING id, staged_text_id"
                    "), marked AS ("
                    "  UPDATE staged_texts s SET state = 'IMPORTED', task_id = created.id, version = s.version + 1,"
                    "    update_time = now()"
                    "  FROM created WHERE s.id = created.staged_text_id RETURNING s.id"
                    ") SELECT count(*) AS created FROM marked"
                ).format(where=where),
                params,
            )
            created = one_row(cur, "import")["created"]
            if targets is None:
                # A fresh snapshot: it sees imports that committed while this one waited.
                cur.execute(
                    sql.SQL("SELECT count(*) AS imported FROM staged_texts s WHERE {} AND s.state = 'IMPORTED'").format(
                        where
                    ),
                    params,
                )
                already = one_row(cur, "import")["imported"] - created
            return ImportResult(created_count=created, already_imported_count=already)

    def _text_in(self, cur: psycopg.Cursor[DictRow], project: str, text_id: str) -> StagedText:
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE s.project = %s AND s.id = %s").format(TEXT_COLUMNS, TEXTS_FROM),
            (project, text_id),
        )
        return text_from_row(one_row(cur, staged_text_name(project, text_id)))

    def _lock_texts(self, cur: psycopg.Cursor[DictRow], project: str, ids: list[str]) -> dict[str, str]:
        """Lock the project's texts among `ids` (in seq order) and return their states."""
        cur.execute(
            "SELECT id, state FROM staged_texts WHERE project = %s AND id = ANY(%s::text[]) ORDER BY seq FOR UPDATE",
            (project, ids),
        )
        return {row["id"]: row["state"] for row in cur.fetchall()}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_conditions(project: str, text_filter: TextFilter) -> tuple[sql.Composable, dict[str, Any]]:
    conditions = [sql.SQL("s.project = %(project)s")]
    params: dict[str, Any] = {"project": project}
    if text_filter.job_id is not None:
        conditions.append(sql.SQL("s.job_id = %(filter_job)s"))
        params["filter_job"] = text_filter.job_id
    if text_filter.state is not None:
        conditions.append(sql.SQL("s.state = %(filter_state)s"))
        params["filter_state"] = text_filter.state.value
    if text_filter.tag is not None:
        conditions.append(sql.SQL("s.tags @> ARRAY[%(filter_tag)s]::text[]"))
        params["filter_tag"] = text_filter.tag
    if text_filter.duplicate is not None:
        conditions.append(sql.SQL("s.duplicate = %(filter_duplicate)s"))
        params["filter_duplicate"] = text_filter.duplicate
    if text_filter.query:
        conditions.append(sql.SQL("s.text ILIKE %(filter_query)s"))
        params["filter_query"] = f"%{_escape_like(text_filter.query)}%"
    return sql.SQL(" AND ").join(conditions), params
