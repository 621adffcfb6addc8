"""SQL of tasks: listing, reading and retagging."""

from __future__ import annotations

from collections.abc import Generator

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from services.runtime.errors import Aborted, FailedPrecondition
from services.task_store.records import Page, Task
from services.task_store.repository.rows import TASK_COLUMNS, one_row, page_of, task_from_row
from services.task_store.repository.staged_texts import EXPORT_PAGE_ROWS
from services.task_store.repository.transactions import PooledRepository
from services.task_store.validation import SYNTHETIC_TAG
from services.vocabulary.names import task_name
from services.vocabulary.reasons import Reason


class TaskRepository(PooledRepository):
    def list_tasks(
        self, project: str, *, tag: str | None, job_id: str | None, before_seq: int | None, limit: int
    ) -> Page:
        conditions = [sql.SQL("t.project = %(project)s")]
        if tag is not None:
            conditions.append(sql.SQL("t.tags @> ARRAY[%(tag)s]::text[]"))
        if job_id is not None:
            conditions.append(sql.SQL("t.job_id = %(job)s"))
        if before_seq is not None:
            conditions.append(sql.SQL("t.seq < %(before)s"))
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM tasks t WHERE {} ORDER BY t.seq DESC LIMIT %(limit)s").format(
                    TASK_COLUMNS, sql.SQL(" AND ").join(conditions)
                ),
                {"project": project, "tag": tag, "job": job_id, "before": before_seq, "limit": limit + 1},
            )
            return page_of([task_from_row(row) for row in cur.fetchall()], limit)

    def iter_tasks(
        self, project: str, *, tag: str | None, job_id: str | None, page_rows: int = EXPORT_PAGE_ROWS
    ) -> Generator[Task, None, None]:
        """Every matching task in write order, one keyset page per short transaction,
        as StagedTextRepository.iter_texts: a consumer that stops reading holds no
        connection, only the page in hand (tasks hold one text each: rows bound it)."""
        conditions = [sql.SQL("t.project = %(project)s"), sql.SQL("t.seq > %(after)s")]
        if tag is not None:
            conditions.append(sql.SQL("t.tags @> ARRAY[%(tag)s]::text[]"))
        if job_id is not None:
            conditions.append(sql.SQL("t.job_id = %(job)s"))
        query = sql.SQL("SELECT {} FROM tasks t WHERE {} ORDER BY t.seq LIMIT %(rows)s").format(
            TASK_COLUMNS, sql.SQL(" AND ").join(conditions)
        )
        params = {"project": project, "tag": tag, "job": job_id, "after": 0, "rows": page_rows}
        while True:
            with self._cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
            page = [task_from_row(row) for row in rows]  # converted after the commit
            yield from page
            if not page:
                return
            params["after"] = page[-1].seq

    def get_task(self, project: str, task_id: str) -> Task:
        with self._cursor() as cur:
            return self._task_in(cur, project, task_id)

    def update_task_tags(self, project: str, task_id: str, tags: tuple[str, ...], expected_version: int | None) -> Task:
        name = task_name(project, task_id)
        with self._cursor() as cur:
            cur.execute(
                "SELECT staged_text_id, version FROM tasks WHERE project = %s AND id = %s FOR UPDATE",
                (project, task_id),
            )
            row = one_row(cur, name)
            if expected_version is not None and expected_version != row["version"]:
                raise Aborted(f"{name} changed since it was read (stale etag); read it again and retry")
            if row["staged_text_id"] is not None and SYNTHETIC_TAG not in tags:
                raise FailedPrecondition(
                    f"task.tags: {name} came from a generated text and must keep the tag {SYNTHETIC_TAG!r}",
                    reason=Reason.SYNTHETIC_TAG_REQUIRED,
                )
            cur.execute(
                "UPDATE tasks SET tags = %s::text[], version = version + 1, update_time = now() WHERE id = %s",
                (list(tags), task_id),
            )
            return self._task_in(cur, project, task_id)

    def _task_in(self, cur: psycopg.Cursor[DictRow], project: str, task_id: str) -> Task:
        cur.execute(
            sql.SQL("SELECT {} FROM tasks t WHERE t.project = %s AND t.id = %s").format(TASK_COLUMNS),
            (project, task_id),
        )
        return task_from_row(one_row(cur, task_name(project, task_id)))
