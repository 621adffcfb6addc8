"""All SQL of the task store. Every public method is one transaction on a pooled
connection; the methods that change a job send `pg_notify` in that same transaction,
so watchers hear of a change exactly when it becomes visible.

Locking, in the one order every method follows (so that none can deadlock another):
1. the job row (`FOR UPDATE`): appends, failure and cancellation of one job run one
   after the other, which makes counters and "slot i is written once" simple;
2. the project's advisory lock, held by appends while they insert texts: texts get
   their `seq` in commit order (keyset pages never skip one) and duplicate detection
   sees every earlier text of the project;
3. staged-text rows, always in `seq` order (imports, discards, edits).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from services.runtime.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.task_store import duplicates, quotas
from services.task_store.quotas import QuotaLimits, QuotaUsage
from services.task_store.records import (
    AppendOutcome,
    EntityLabel,
    GeneratedText,
    ImportResult,
    Job,
    JobError,
    JobState,
    JobWork,
    NewJob,
    Page,
    Prediction,
    PromptVariable,
    SlotOutcome,
    SlotResult,
    Span,
    StagedText,
    Task,
    TextChange,
    TextFilter,
    TextState,
)
from services.task_store.validation import SYNTHETIC_TAG
from services.vocabulary.names import job_name, new_id, staged_text_name, task_name
from services.vocabulary.quoting import quoted
from services.vocabulary.reasons import Reason

# How long the right to enqueue a job's messages stays with the CreateJob call that took
# it; a retry after this (the first caller died before enqueueing) takes it over.
ENQUEUE_CLAIM_LEASE = timedelta(seconds=60)

_DUPLICATE_FAILURE = JobError(
    "DUPLICATE", "the provider repeated texts the project already has, on every attempt this unique job allows"
)

# Every job change is announced here with the job id as payload (see watch.py).
JOB_CHANNEL = "synthtasks_job_changes"

_JOB_COLUMNS = sql.SQL(
    "j.id, j.seq, j.project, j.request_id, j.prompt, j.system_prompt, j.temperature, j.text_count,"
    " j.provider, j.model, j.max_output_tokens, j.seed, j.tags, j.variables, j.is_unique, j.labels,"
    " j.variable_labels, j.prompt_hash, j.state, j.produced, j.failed, j.duplicates, j.dropped_spans,"
    " j.prompt_tokens, j.completion_tokens, j.error_reason,"
    " j.error_message, j.enqueued, j.version, j.create_time, j.start_time, j.end_time, j.update_time"
)
_TEXT_COLUMNS = sql.SQL(
    "s.id, s.seq, s.project, s.job_id, s.slot, s.text, coalesce(s.original_text, s.text) AS original_text,"
    " s.tags, s.state, s.duplicate, s.spans,"
    " s.task_id, j.provider, j.temperature, j.seed, j.prompt_hash, s.model, s.variables, s.prompt_tokens,"
    " s.completion_tokens, s.finish_reason, s.latency_us, s.generate_time, s.version, s.create_time,"
    " s.update_time"
)
_TEXTS_FROM = sql.SQL("staged_texts s JOIN generation_jobs j ON j.id = s.job_id")
# One page of an export: at most this many texts, and no more text than this beyond the
# page's first text (a text and its original are at most 20,000 characters each: 160 KB).
EXPORT_PAGE_ROWS = 200
EXPORT_PAGE_BYTES = 1024 * 1024
_TASK_COLUMNS = sql.SQL(
    "t.id, t.seq, t.project, t.text, t.tags, t.staged_text_id, t.job_id, t.predictions, t.version, t.create_time,"
    " t.update_time"
)


class Repository:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            yield cursor

    # -- jobs ------------------------------------------------------------------------

    def create_job(self, new: NewJob, limits: QuotaLimits | None = None) -> tuple[Job, bool, bool]:
        """The job; whether this call created it (False: an earlier call with the same
        request id did); and whether this call must enqueue its messages. With `limits`,
        a new job that would take the project past a quota raises ResourceExhausted and
        nothing is written (quotas.py).

        AIP-155: the same request_id with the same request returns the same job; with a
        different request it is refused (ALREADY_EXISTS, REQUEST_ID_REUSED). Of calls
        racing on one request_id exactly one may enqueue: the one that inserts the row,
        or, when a claim has lapsed without the job being enqueued (that caller died),
        the one whose conditional update takes the claim."""
        with self._cursor() as cur:
            if limits is not None:
                # Creations of one project queue here, so two cannot both fit under a limit.
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"job_quota:{new.project}",))
                retry = bool(new.request_id) and (
                    cur.execute(
                        "SELECT 1 FROM generation_jobs WHERE project = %s AND request_id = %s",
                        (new.project, new.request_id),
                    ).fetchone()
                    is not None
                )
                # A retry of a created job is never refused: it is answered below like any retry.
                if not retry:
                    refused = quotas.refusal(new.project, limits, self._usage_in(cur, new.project), new.text_count)
                    if refused is not None:
                        raise refused
            cur.execute(
                sql.SQL(
                    "INSERT INTO generation_jobs AS j (id, project, request_id, prompt, system_prompt, temperature,"
                    " text_count, provider, model, max_output_tokens, seed, tags, variables, is_unique, labels,"
                    " variable_labels, prompt_hash, request_hash, enqueue_claim_time)"
                    " VALUES (%(id)s, %(project)s, %(request_id)s, %(prompt)s, %(system_prompt)s, %(temperature)s,"
                    " %(text_count)s, %(provider)s, %(model)s, %(max_output_tokens)s, %(seed)s, %(tags)s,"
                    " %(variables)s, %(unique)s, %(labels)s, %(variable_labels)s, %(prompt_hash)s,"
                    " %(request_hash)s, now())"
                    " ON CONFLICT (project, request_id) WHERE request_id IS NOT NULL DO NOTHING"
                    " RETURNING {}"
                ).format(_JOB_COLUMNS),
                {
                    "id": new_id(),
                    "project": new.project,
                    "request_id": new.request_id or None,
                    "prompt": new.prompt,
                    "system_prompt": new.system_prompt,
                    "temperature": new.temperature,
                    "text_count": new.text_count,
                    "provider": new.provider,
                    "model": new.model,
                    "max_output_tokens": new.max_output_tokens,
                    "seed": new.seed,
                    "tags": list(new.tags),
                    "variables": Jsonb([{"name": v.name, "values": list(v.values)} for v in new.variables]),
                    "unique": new.unique,
                    "labels": Jsonb([{"name": label.name, "description": label.description} for label in new.labels]),
                    "variable_labels": Jsonb(new.variable_labels),
                    "prompt_hash": new.prompt_hash,
                    "request_hash": new.request_hash,
                },
            )
            row = cur.fetchone()
            if row is not None:
                return _job(row), True, True
            # The INSERT waited for the concurrent winner to commit; this statement's
            # fresh snapshot sees its row (and waits for a concurrent claim to commit).
            cur.execute(
                sql.SQL(
                    "UPDATE generation_jobs j SET enqueue_claim_time = CASE WHEN NOT j.enqueued"
                    " AND (j.request_hash IS NULL OR j.request_hash = %(hash)s)"
                    " AND (j.enqueue_claim_time IS NULL OR j.enqueue_claim_time < now() - %(lease)s)"
                    " THEN now() ELSE j.enqueue_claim_time END"
                    " FROM (SELECT id, enqueue_claim_time FROM generation_jobs"
                    " WHERE project = %(project)s AND request_id = %(request_id)s FOR UPDATE) AS before"
                    " WHERE j.id = before.id"
                    " RETURNING {}, j.request_hash,"
                    " j.enqueue_claim_time IS DISTINCT FROM before.enqueue_claim_time AS claimed"
                ).format(_JOB_COLUMNS),
                {
                    "hash": new.request_hash,
                    "lease": ENQUEUE_CLAIM_LEASE,
                    "project": new.project,
                    "request_id": new.request_id,
                },
            )
            row = _one(cur, "the job of this request_id")
            if row["request_hash"] is not None and bytes(row["request_hash"]) != new.request_hash:
                raise AlreadyExists(
                    f"request_id {quoted(new.request_id)} was used for a different request"
                    f" ({job_name(new.project, row['id'])}); send a new request_id for a new job",
                    reason=Reason.REQUEST_ID_REUSED,
                )
            return _job(row), False, bool(row["claimed"])

    def quota_usage(self, project: str) -> QuotaUsage:
        with self._cursor() as cur:
            return self._usage_in(cur, project)

    def quota_usage_by_project(self) -> dict[str, QuotaUsage]:
        """Usage of every project with unfinished jobs or jobs created in the last minute."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT project,"
                " coalesce(sum(text_count - produced - failed) FILTER (WHERE state IN ('QUEUED', 'RUNNING')), 0)"
                " AS texts,"
                " count(*) FILTER (WHERE state IN ('QUEUED', 'RUNNING')) AS running,"
                " count(*) FILTER (WHERE create_time > now() - make_interval(secs => %(window)s)) AS recent"
                " FROM generation_jobs"
                " WHERE state IN ('QUEUED', 'RUNNING') OR create_time > now() - make_interval(secs => %(window)s)"
                " GROUP BY project",
                {"window": quotas.RATE_WINDOW_SECONDS},
            )
            return {
                row["project"]: QuotaUsage(int(row["texts"]), row["running"], row["recent"], 0.0)
                for row in cur.fetchall()
            }

    def _usage_in(self, cur: psycopg.Cursor[DictRow], project: str) -> QuotaUsage:
        cur.execute(
            "SELECT coalesce(sum(text_count - produced - failed), 0) AS texts, count(*) AS running"
            " FROM generation_jobs WHERE project = %s AND state IN ('QUEUED', 'RUNNING')",
            (project,),
        )
        active = _one(cur, "usage")
        cur.execute(
            "SELECT count(*) AS recent,"
            " coalesce(extract(epoch FROM min(create_time) + make_interval(secs => %(window)s) - now()), 0)"
            " AS frees_in"
            " FROM generation_jobs WHERE project = %(project)s"
            " AND create_time > now() - make_interval(secs => %(window)s)",
            {"project": project, "window": quotas.RATE_WINDOW_SECONDS},
        )
        recent = _one(cur, "usage")
        return QuotaUsage(
            int(active["texts"]), active["running"], recent["recent"], max(0.0, float(recent["frees_in"]))
        )

    def mark_job_enqueued(self, project: str, job_id: str) -> bool:
        """Record that every slot is enqueued; True when an earlier call already had."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE generation_jobs j SET enqueued = true FROM"
                " (SELECT id, enqueued FROM generation_jobs WHERE project = %s AND id = %s FOR UPDATE) AS before"
                " WHERE j.id = before.id RETURNING before.enqueued",
                (project, job_id),
            )
            return bool(_one(cur, job_name(project, job_id))["enqueued"])

    def get_job(self, project: str, job_id: str) -> Job:
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(_JOB_COLUMNS),
                (project, job_id),
            )
            return _job(_one(cur, job_name(project, job_id)))

    def list_jobs(self, project: str, state: JobState | None, before_seq: int | None, limit: int) -> Page:
        conditions = [sql.SQL("j.project = %(project)s")]
        if state is not None:
            conditions.append(sql.SQL("j.state = %(state)s"))
        if before_seq is not None:
            conditions.append(sql.SQL("j.seq < %(before)s"))
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE {} ORDER BY j.seq DESC LIMIT %(limit)s").format(
                    _JOB_COLUMNS, sql.SQL(" AND ").join(conditions)
                ),
                {"project": project, "state": state.value if state else None, "before": before_seq, "limit": limit + 1},
            )
            return _page([_job(row) for row in cur.fetchall()], limit)

    def claim_stalled_jobs(self, stalled_for: timedelta, limit: int) -> list[Job]:
        """Unfinished jobs with no change and no claim for `stalled_for`, oldest first,
        marked as claimed now. SKIP LOCKED: concurrent callers (several gateways) claim
        different jobs, and a job being written to is by definition not stalled."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL(
                    "UPDATE generation_jobs j SET recover_time = now() WHERE j.id IN ("
                    " SELECT id FROM generation_jobs WHERE state IN ('QUEUED', 'RUNNING')"
                    " AND update_time < now() - %(stalled)s"
                    " AND (recover_time IS NULL OR recover_time < now() - %(stalled)s)"
                    " ORDER BY update_time LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                    " RETURNING {}"
                ).format(_JOB_COLUMNS),
                {"stalled": stalled_for, "limit": limit},
            )
            return sorted((_job(row) for row in cur.fetchall()), key=lambda job: job.update_time)

    def get_job_work(self, project: str, job_id: str, first_slot: int, slot_count: int) -> JobWork:
        """The job (QUEUED becomes RUNNING) and the filled slots of [first, first+count)."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(_JOB_COLUMNS),
                (project, job_id),
            )
            job = _job(_one(cur, job_name(project, job_id)))
            if first_slot >= job.text_count:
                raise InvalidArgument.field("first_slot", f"must be below the job's text_count ({job.text_count})")
            if first_slot + slot_count > job.text_count:
                raise InvalidArgument.field(
                    "slot_count", f"the range must end at or before the job's text_count ({job.text_count})"
                )
            if job.state is JobState.QUEUED:
                cur.execute(
                    sql.SQL(
                        "UPDATE generation_jobs j SET state = 'RUNNING', start_time = coalesce(start_time, now()),"
                        " version = version + 1, update_time = now()"
                        " WHERE j.id = %s AND j.state = 'QUEUED' RETURNING {}"
                    ).format(_JOB_COLUMNS),
                    (job_id,),
                )
                changed = cur.fetchone()
                if changed is not None:
                    job = _job(changed)
                    _notify(cur, job_id)
                else:  # another worker started it (or it was cancelled) meanwhile
                    job = self._job_in(cur, project, job_id)
            cur.execute(
                "SELECT slot FROM staged_texts WHERE job_id = %(job)s AND slot >= %(first)s AND slot < %(end)s"
                " UNION SELECT slot FROM failed_slots WHERE job_id = %(job)s AND slot >= %(first)s AND slot < %(end)s"
                " ORDER BY slot",
                {"job": job_id, "first": first_slot, "end": first_slot + slot_count},
            )
            return JobWork(job, [row["slot"] for row in cur.fetchall()])

    def append_results(
        self,
        project: str,
        job_id: str,
        results: Sequence[SlotResult],
        *,
        extra_prompt_tokens: int = 0,
        extra_completion_tokens: int = 0,
    ) -> AppendOutcome:
        """Write each result's slot at most once; update counters and the job's state.

        One transaction: either the whole batch with its counters, or nothing."""
        with self._cursor() as cur:
            job = self._lock_job(cur, project, job_id)
            for index, result in enumerate(results):
                if not 0 <= result.slot < job.text_count:
                    raise InvalidArgument.field(
                        f"results[{index}].slot", f"must be between 0 and {job.text_count - 1} (the job's slots)"
                    )
            label_names = {label.name for label in job.labels}
            for index, result in enumerate(results):
                for span_index, span in enumerate(result.text.spans if result.text is not None else ()):
                    if span.label not in label_names:
                        # A worker bug, not a model's whim (the worker drops what it cannot
                        # place): refuse the whole batch loudly rather than store a stray label.
                        raise InvalidArgument.field(
                            f"results[{index}].text.spans[{span_index}].label",
                            f"{quoted(span.label)} is not one of the job's labels"
                            + (f" ({', '.join(sorted(label_names))})" if label_names else " (the job has none)"),
                        )
            if job.state.terminal:
                # Workers stop when they see the state; nothing more is written.
                return AppendOutcome([SlotOutcome(r.slot, False, False) for r in results], job.state)

            slots = [r.slot for r in results]
            cur.execute(
                "SELECT slot FROM staged_texts WHERE job_id = %(job)s AND slot = ANY(%(slots)s::int[])"
                " UNION SELECT slot FROM failed_slots WHERE job_id = %(job)s AND slot = ANY(%(slots)s::int[])",
                {"job": job_id, "slots": slots},
            )
            filled = {row["slot"] for row in cur.fetchall()}
            fresh = [r for r in results if r.slot not in filled]
            outcomes = {r.slot: SlotOutcome(r.slot, False, False) for r in results if r.slot in filled}

            texts = [(r, r.text) for r in fresh if r.text is not None]
            failures = [(r.slot, r.failure) for r in fresh if r.failure is not None]
            tokens_prompt, tokens_completion = extra_prompt_tokens, extra_completion_tokens
            duplicate_count = 0
            to_write: list[tuple[int, GeneratedText, bytes, bool]] = []
            if texts:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"staged_texts:{project}",))
                hashes = {r.slot: duplicates.fingerprint(generated.text) for r, generated in texts}
                cur.execute(
                    "SELECT hash FROM text_fingerprints WHERE project = %s AND hash = ANY(%s::bytea[])",
                    (project, list(set(hashes.values()))),
                )
                seen = {bytes(row["hash"]) for row in cur.fetchall()}
                for result, generated in texts:
                    digest = hashes[result.slot]
                    is_duplicate = digest in seen
                    seen.add(digest)
                    tokens_prompt += generated.prompt_tokens
                    tokens_completion += generated.completion_tokens
                    duplicate_count += is_duplicate
                    if is_duplicate and result.reject_duplicate:
                        outcomes[result.slot] = SlotOutcome(result.slot, False, True)
                    elif is_duplicate and job.unique:
                        # The worker's last attempt: a unique job never stages a duplicate,
                        # the slot fails and the job says why.
                        failures.append((result.slot, _DUPLICATE_FAILURE))
                    else:
                        to_write.append((result.slot, generated, digest, is_duplicate))
            written_texts = self._insert_texts(cur, job, to_write)
            if written_texts:
                cur.execute(
                    "INSERT INTO text_fingerprints (project, hash)"
                    " SELECT %s, unnest(%s::bytea[]) ON CONFLICT DO NOTHING",
                    (project, list({d for slot, _, d, dup in to_write if not dup and slot in written_texts})),
                )
            dropped_spans = sum(generated.dropped_spans for slot, generated, _, _ in to_write if slot in written_texts)
            for slot, _, _, is_duplicate in to_write:
                outcomes[slot] = SlotOutcome(slot, slot in written_texts, is_duplicate)
            written_failures = self._insert_failures(cur, job_id, failures)
            for slot, failure in failures:
                outcomes[slot] = SlotOutcome(slot, slot in written_failures, failure is _DUPLICATE_FAILURE)

            produced = job.produced + len(written_texts)
            failed = job.failed + len(written_failures)
            changed = written_texts or written_failures or duplicate_count or tokens_prompt or tokens_completion
            state = job.state
            if changed:
                state = JobState.RUNNING
                error: JobError | None = None
                if produced + failed == job.text_count:
                    state = JobState.SUCCEEDED if failed == 0 else JobState.FAILED
                    if failed:
                        error = self._most_common_failure(cur, job_id)
                cur.execute(
                    "UPDATE generation_jobs SET produced = %(produced)s, failed = %(failed)s,"
                    " duplicates = duplicates + %(duplicates)s, dropped_spans = dropped_spans + %(dropped)s,"
                    " prompt_tokens = prompt_tokens + %(prompt)s,"
                    " completion_tokens = completion_tokens + %(completion)s, state = %(state)s,"
                    " start_time = coalesce(start_time, now()),"
                    " end_time = CASE WHEN %(ended)s THEN now() ELSE end_time END,"
                    " error_reason = coalesce(%(reason)s, error_reason),"
                    " error_message = coalesce(%(message)s, error_message),"
                    " version = version + 1, update_time = now() WHERE id = %(job)s",
                    {
                        "produced": produced,
                        "failed": failed,
                        "duplicates": duplicate_count,
                        "dropped": dropped_spans,
                        "prompt": tokens_prompt,
                        "completion": tokens_completion,
                        "state": state.value,
                        "ended": state.terminal,
                        "reason": error.reason if error else None,
                        "message": error.message if error else None,
                        "job": job_id,
                    },
                )
                _notify(cur, job_id)
            return AppendOutcome([outcomes[r.slot] for r in results], state, ended_job=bool(changed) and state.terminal)

    def fail_job(self, project: str, job_id: str, error: JobError) -> tuple[Job, bool]:
        """The job, FAILED with `error` unless it had already ended; and whether this call ended it."""
        with self._cursor() as cur:
            job = self._lock_job(cur, project, job_id)
            if job.state.terminal:
                return job, False
            cur.execute(
                sql.SQL(
                    "UPDATE generation_jobs j SET state = 'FAILED', error_reason = %s, error_message = %s,"
                    " end_time = now(), version = version + 1, update_time = now() WHERE j.id = %s RETURNING {}"
                ).format(_JOB_COLUMNS),
                (error.reason, error.message, job_id),
            )
            failed = _job(_one(cur, job_name(project, job_id)))
            _notify(cur, job_id)
            return failed, True

    def cancel_job(self, project: str, job_id: str) -> tuple[Job, bool]:
        """The job, CANCELLED unless it already was; and whether this call cancelled it."""
        with self._cursor() as cur:
            job = self._lock_job(cur, project, job_id)
            if job.state is JobState.CANCELLED:
                return job, False
            if job.state.terminal:
                raise FailedPrecondition(
                    f"{job_name(project, job_id)} has already ended ({job.state.value}); only queued or running"
                    " jobs can be cancelled",
                    reason=Reason.JOB_ALREADY_ENDED,
                )
            cur.execute(
                sql.SQL(
                    "UPDATE generation_jobs j SET state = 'CANCELLED', end_time = now(), version = version + 1,"
                    " update_time = now() WHERE j.id = %s RETURNING {}"
                ).format(_JOB_COLUMNS),
                (job_id,),
            )
            cancelled = _job(_one(cur, job_name(project, job_id)))
            _notify(cur, job_id)
            return cancelled, True

    def job_snapshot(self, project: str, job_id: str) -> tuple[Job, int]:
        """The job and the seq of its newest text, from one snapshot (a watch's start)."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {}, (SELECT coalesce(max(seq), 0) FROM staged_texts WHERE job_id = j.id) AS last_seq"
                    " FROM generation_jobs j WHERE j.project = %s AND j.id = %s"
                ).format(_JOB_COLUMNS),
                (project, job_id),
            )
            row = _one(cur, job_name(project, job_id))
            return _job(row), row["last_seq"]

    def job_progress(self, project: str, job_id: str, after_seq: int, limit: int) -> tuple[Job, list[StagedText]]:
        """The job and its texts written after `after_seq` (oldest first), from one
        snapshot, so that the counts match the texts."""
        with self._cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            job = self._job_in(cur, project, job_id)
            cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE s.job_id = %s AND s.seq > %s ORDER BY s.seq LIMIT %s").format(
                    _TEXT_COLUMNS, _TEXTS_FROM
                ),
                (job_id, after_seq, limit),
            )
            return job, [_text(row) for row in cur.fetchall()]

    # -- staged texts ----------------------------------------------------------------

    def list_texts(self, project: str, text_filter: TextFilter, before_seq: int | None, limit: int) -> Page:
        where, params = _text_conditions(project, text_filter)
        if before_seq is not None:
            where = sql.SQL("{} AND s.seq < %(before)s").format(where)
            params["before"] = before_seq
        params["limit"] = limit + 1
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY s.seq DESC LIMIT %(limit)s").format(
                    _TEXT_COLUMNS, _TEXTS_FROM, where
                ),
                params,
            )
            return _page([_text(row) for row in cur.fetchall()], limit)

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
        ).format(_TEXT_COLUMNS, _TEXTS_FROM, where)
        while True:
            with self._cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
            page = [_text(row) for row in rows]  # converted after the commit: the transaction stays short
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
                "SELECT state, version FROM staged_texts WHERE project = %s AND id = %s FOR UPDATE", (project, text_id)
            )
            row = _one(cur, name)
            if row["state"] == TextState.IMPORTED.value:
                raise FailedPrecondition(f"{name} is imported and read-only", reason=Reason.STAGED_TEXT_IMPORTED)
            if expected_version is not None and expected_version != row["version"]:
                raise Aborted(f"{name} changed since it was read (stale etag); read it again and retry")
            cur.execute(
                # Right-hand sides see the row as it was: the first edit keeps the generated text.
                "UPDATE staged_texts SET"
                " original_text = CASE WHEN %(text)s::text IS NULL THEN original_text"
                " ELSE coalesce(original_text, text) END,"
                " text = coalesce(%(text)s, text), tags = coalesce(%(tags)s::text[], tags),"
                " version = version + 1, update_time = now() WHERE id = %(id)s",
                {"text": change.text, "tags": list(change.tags) if change.tags is not None else None, "id": text_id},
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
                sql.SQL("SELECT {} FROM {} WHERE s.id = ANY(%s::text[])").format(_TEXT_COLUMNS, _TEXTS_FROM), (ids,)
            )
            by_id = {row["id"]: _text(row) for row in cur.fetchall()}
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
                    "  SELECT s.id, s.project, s.text, s.tags, s.job_id, s.seq FROM staged_texts s"
                    "  WHERE {where} AND s.state = 'STAGED' ORDER BY s.seq FOR UPDATE"
                    "), created AS ("
                    "  INSERT INTO tasks (id, project, text, tags, staged_text_id, job_id)"
                    "  SELECT replace(gen_random_uuid()::text, '-', ''), c.project, c.text,"
                    "    CASE WHEN %(synthetic)s = ANY(c.tags) THEN c.tags ELSE c.tags || %(synthetic)s::text END,"
                    "    c.id, c.job_id"
                    "  FROM candidates c ORDER BY c.seq"
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
            created = _one(cur, "import")["created"]
            if targets is None:
                # A fresh snapshot: it sees imports that committed while this one waited.
                cur.execute(
                    sql.SQL("SELECT count(*) AS imported FROM staged_texts s WHERE {} AND s.state = 'IMPORTED'").format(
                        where
                    ),
                    params,
                )
                already = _one(cur, "import")["imported"] - created
            return ImportResult(created_count=created, already_imported_count=already)

    # -- tasks -----------------------------------------------------------------------

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
                    _TASK_COLUMNS, sql.SQL(" AND ").join(conditions)
                ),
                {"project": project, "tag": tag, "job": job_id, "before": before_seq, "limit": limit + 1},
            )
            return _page([_task(row) for row in cur.fetchall()], limit)

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
            row = _one(cur, name)
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

    # -- inside a transaction ----------------------------------------------------------

    def _lock_job(self, cur: psycopg.Cursor[DictRow], project: str, job_id: str) -> Job:
        cur.execute(
            sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s FOR UPDATE").format(
                _JOB_COLUMNS
            ),
            (project, job_id),
        )
        return _job(_one(cur, job_name(project, job_id)))

    def _job_in(self, cur: psycopg.Cursor[DictRow], project: str, job_id: str) -> Job:
        cur.execute(
            sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(_JOB_COLUMNS),
            (project, job_id),
        )
        return _job(_one(cur, job_name(project, job_id)))

    def _text_in(self, cur: psycopg.Cursor[DictRow], project: str, text_id: str) -> StagedText:
        cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE s.project = %s AND s.id = %s").format(_TEXT_COLUMNS, _TEXTS_FROM),
            (project, text_id),
        )
        return _text(_one(cur, staged_text_name(project, text_id)))

    def _task_in(self, cur: psycopg.Cursor[DictRow], project: str, task_id: str) -> Task:
        cur.execute(
            sql.SQL("SELECT {} FROM tasks t WHERE t.project = %s AND t.id = %s").format(_TASK_COLUMNS),
            (project, task_id),
        )
        return _task(_one(cur, task_name(project, task_id)))

    def _lock_texts(self, cur: psycopg.Cursor[DictRow], project: str, ids: list[str]) -> dict[str, str]:
        """Lock the project's texts among `ids` (in seq order) and return their states."""
        cur.execute(
            "SELECT id, state FROM staged_texts WHERE project = %s AND id = ANY(%s::text[]) ORDER BY seq FOR UPDATE",
            (project, ids),
        )
        return {row["id"]: row["state"] for row in cur.fetchall()}

    def _insert_texts(
        self, cur: psycopg.Cursor[DictRow], job: Job, rows: list[tuple[int, GeneratedText, bytes, bool]]
    ) -> set[int]:
        """Insert staged texts in one statement; the slots actually written."""
        if not rows:
            return set()
        texts = [generated for _, generated, _, _ in rows]
        cur.execute(
            "INSERT INTO staged_texts (id, project, job_id, slot, text, tags, duplicate, model, variables, spans,"
            " prompt_tokens, completion_tokens, finish_reason, latency_us, generate_time)"
            " SELECT r.id, %(project)s, %(job)s, r.slot, r.text, %(tags)s::text[], r.duplicate, r.model,"
            " r.variables::jsonb, r.spans::jsonb, r.prompt_tokens, r.completion_tokens, r.finish_reason,"
            " r.latency_us, r.generate_time"
            " FROM unnest(%(ids)s::text[], %(slots)s::int[], %(texts)s::text[], %(duplicates)s::bool[],"
            " %(models)s::text[], %(variables)s::text[], %(spans)s::text[], %(prompt_tokens)s::int[],"
            " %(completion_tokens)s::int[], %(finish_reasons)s::text[], %(latencies)s::bigint[],"
            " %(generate_times)s::timestamptz[]) WITH ORDINALITY AS r(id, slot, text, duplicate, model,"
            " variables, spans, prompt_tokens, completion_tokens, finish_reason, latency_us, generate_time, ord)"
            " ORDER BY r.ord"
            " ON CONFLICT ON CONSTRAINT staged_texts_job_slot DO NOTHING RETURNING slot",
            {
                "project": job.project,
                "job": job.id,
                "tags": list(job.tags),
                "ids": [new_id() for _ in rows],
                "slots": [slot for slot, _, _, _ in rows],
                "texts": [t.text for t in texts],
                "duplicates": [is_duplicate for _, _, _, is_duplicate in rows],
                "models": [t.model or job.model for t in texts],
                "variables": [json.dumps(t.variables, ensure_ascii=False) for t in texts],
                "spans": [spans_json(t.spans) for t in texts],
                "prompt_tokens": [t.prompt_tokens for t in texts],
                "completion_tokens": [t.completion_tokens for t in texts],
                "finish_reasons": [t.finish_reason for t in texts],
                "latencies": [t.latency_us for t in texts],
                "generate_times": [t.generate_time for t in texts],
            },
        )
        return {row["slot"] for row in cur.fetchall()}

    def _insert_failures(
        self, cur: psycopg.Cursor[DictRow], job_id: str, failures: list[tuple[int, JobError]]
    ) -> set[int]:
        if not failures:
            return set()
        cur.execute(
            "INSERT INTO failed_slots (job_id, slot, reason, message)"
            " SELECT %s, r.slot, r.reason, r.message FROM unnest(%s::int[], %s::text[], %s::text[])"
            " AS r(slot, reason, message)"
            " ON CONFLICT (job_id, slot) DO NOTHING RETURNING slot",
            (
                job_id,
                [slot for slot, _ in failures],
                [failure.reason for _, failure in failures],
                [failure.message for _, failure in failures],
            ),
        )
        return {row["slot"] for row in cur.fetchall()}

    def _most_common_failure(self, cur: psycopg.Cursor[DictRow], job_id: str) -> JobError:
        """The reason most slots failed with, and the message of its first slot."""
        cur.execute(
            "SELECT reason, (array_agg(message ORDER BY slot))[1] AS message, count(*) AS slots"
            " FROM failed_slots WHERE job_id = %s GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 1",
            (job_id,),
        )
        row = _one(cur, "failed slots")
        return JobError(row["reason"], row["message"])


# -- rows to records ---------------------------------------------------------------------


def _one(cur: psycopg.Cursor[DictRow], what: str) -> dict[str, Any]:
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"{what} does not exist")
    return row


def spans_json(spans: Sequence[Span]) -> str:
    return json.dumps([span.as_json() for span in spans], ensure_ascii=False)


def _notify(cur: psycopg.Cursor[DictRow], job_id: str) -> None:
    cur.execute("SELECT pg_notify(%s, %s)", (JOB_CHANNEL, job_id))


def _page(items: list, limit: int) -> Page:
    if len(items) > limit:
        items = items[:limit]
        return Page(items, items[-1].seq)
    return Page(items, None)


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


def _job(row: dict[str, Any]) -> Job:
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


def _text(row: dict[str, Any]) -> StagedText:
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


def _task(row: dict[str, Any]) -> Task:
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
