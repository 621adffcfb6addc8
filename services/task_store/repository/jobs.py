"""SQL of jobs: creation (request identity, quotas, the enqueue claim), the work of
workers (slots, appends, failure), cancellation, stalled jobs and what watchers read.
Every change of a job is announced on JOB_CHANNEL in its own transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

import psycopg
from psycopg import sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from services.task_store import duplicates, quotas
from services.task_store.quotas import QuotaLimits, QuotaUsage
from services.task_store.records import (
    AppendOutcome,
    GeneratedText,
    Job,
    JobError,
    JobState,
    JobWork,
    NewJob,
    Page,
    SlotOutcome,
    SlotResult,
    StagedText,
)
from services.task_store.repository.rows import (
    JOB_COLUMNS,
    TEXT_COLUMNS,
    TEXTS_FROM,
    job_from_row,
    one_row,
    page_of,
    spans_json,
    text_from_row,
)
from services.task_store.repository.transactions import PooledRepository
from services.vocabulary.names import job_name, new_id
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


class JobRepository(PooledRepository):
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
                ).format(JOB_COLUMNS),
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
                return job_from_row(row), True, True
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
                ).format(JOB_COLUMNS),
                {
                    "hash": new.request_hash,
                    "lease": ENQUEUE_CLAIM_LEASE,
                    "project": new.project,
                    "request_id": new.request_id,
                },
            )
            row = one_row(cur, "the job of this request_id")
            if row["request_hash"] is not None and bytes(row["request_hash"]) != new.request_hash:
                raise AlreadyExists(
                    f"request_id {quoted(new.request_id)} was used for a different request"
                    f" ({job_name(new.project, row['id'])}); send a new request_id for a new job",
                    reason=Reason.REQUEST_ID_REUSED,
                )
            return job_from_row(row), False, bool(row["claimed"])

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
        active = one_row(cur, "usage")
        cur.execute(
            "SELECT count(*) AS recent,"
            " coalesce(extract(epoch FROM min(create_time) + make_interval(secs => %(window)s) - now()), 0)"
            " AS frees_in"
            " FROM generation_jobs WHERE project = %(project)s"
            " AND create_time > now() - make_interval(secs => %(window)s)",
            {"project": project, "window": quotas.RATE_WINDOW_SECONDS},
        )
        recent = one_row(cur, "usage")
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
            return bool(one_row(cur, job_name(project, job_id))["enqueued"])

    def get_job(self, project: str, job_id: str) -> Job:
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(JOB_COLUMNS),
                (project, job_id),
            )
            return job_from_row(one_row(cur, job_name(project, job_id)))

    def list_jobs(self, project: str, state: JobState | None, before_seq: int | None, limit: int) -> Page:
        conditions = [sql.SQL("j.project = %(project)s")]
        if state is not None:
            conditions.append(sql.SQL("j.state = %(state)s"))
        if before_seq is not None:
            conditions.append(sql.SQL("j.seq < %(before)s"))
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE {} ORDER BY j.seq DESC LIMIT %(limit)s").format(
                    JOB_COLUMNS, sql.SQL(" AND ").join(conditions)
                ),
                {"project": project, "state": state.value if state else None, "before": before_seq, "limit": limit + 1},
            )
            return page_of([job_from_row(row) for row in cur.fetchall()], limit)

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
                ).format(JOB_COLUMNS),
                {"stalled": stalled_for, "limit": limit},
            )
            return sorted((job_from_row(row) for row in cur.fetchall()), key=lambda job: job.update_time)

    def get_job_work(self, project: str, job_id: str, first_slot: int, slot_count: int) -> JobWork:
        """The job (QUEUED becomes RUNNING) and the filled slots of [first, first+count)."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(JOB_COLUMNS),
                (project, job_id),
            )
            job = job_from_row(one_row(cur, job_name(project, job_id)))
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
                    ).format(JOB_COLUMNS),
                    (job_id,),
                )
                changed = cur.fetchone()
                if changed is not None:
                    job = job_from_row(changed)
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
                ).format(JOB_COLUMNS),
                (error.reason, error.message, job_id),
            )
            failed = job_from_row(one_row(cur, job_name(project, job_id)))
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
                ).format(JOB_COLUMNS),
                (job_id,),
            )
            cancelled = job_from_row(one_row(cur, job_name(project, job_id)))
            _notify(cur, job_id)
            return cancelled, True

    def job_snapshot(self, project: str, job_id: str) -> tuple[Job, int]:
        """The job and the seq of its newest text, from one snapshot (a watch's start)."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {}, (SELECT coalesce(max(seq), 0) FROM staged_texts WHERE job_id = j.id) AS last_seq"
                    " FROM generation_jobs j WHERE j.project = %s AND j.id = %s"
                ).format(JOB_COLUMNS),
                (project, job_id),
            )
            row = one_row(cur, job_name(project, job_id))
            return job_from_row(row), row["last_seq"]

    def job_progress(self, project: str, job_id: str, after_seq: int, limit: int) -> tuple[Job, list[StagedText]]:
        """The job and its texts written after `after_seq` (oldest first), from one
        snapshot, so that the counts match the texts."""
        with self._cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            job = self._job_in(cur, project, job_id)
            cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE s.job_id = %s AND s.seq > %s ORDER BY s.seq LIMIT %s").format(
                    TEXT_COLUMNS, TEXTS_FROM
                ),
                (job_id, after_seq, limit),
            )
            return job, [text_from_row(row) for row in cur.fetchall()]

    def _lock_job(self, cur: psycopg.Cursor[DictRow], project: str, job_id: str) -> Job:
        cur.execute(
            sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s FOR UPDATE").format(
                JOB_COLUMNS
            ),
            (project, job_id),
        )
        return job_from_row(one_row(cur, job_name(project, job_id)))

    def _job_in(self, cur: psycopg.Cursor[DictRow], project: str, job_id: str) -> Job:
        cur.execute(
            sql.SQL("SELECT {} FROM generation_jobs j WHERE j.project = %s AND j.id = %s").format(JOB_COLUMNS),
            (project, job_id),
        )
        return job_from_row(one_row(cur, job_name(project, job_id)))

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
        row = one_row(cur, "failed slots")
        return JobError(row["reason"], row["message"])


def _notify(cur: psycopg.Cursor[DictRow], job_id: str) -> None:
    cur.execute("SELECT pg_notify(%s, %s)", (JOB_CHANNEL, job_id))
