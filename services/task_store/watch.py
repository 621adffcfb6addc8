"""Following jobs as they change: Postgres LISTEN/NOTIFY fanned out to watchers.

Every transaction that changes a job sends `pg_notify(JOB_CHANNEL, job_id)` (see
repository/jobs.py); Postgres delivers it when that transaction commits. One listener
connection per process (`JobEventHub`) receives those notifications and wakes the
watchers of that job; each watcher then reads what changed through the pool. So the
database sees one query per watcher per change, never a polling loop: the only timed
wake-up is a slow safety net (`SAFETY_NET_SECONDS`) in case a notification was lost
while the listener reconnected.

`follow_job` turns that into the event sequence of WatchGenerationJob:

1. the job's current snapshot (and nothing more if it has already ended);
2. one event per new staged text, in write order, carrying the freshest job;
3. a snapshot whenever the job changed in another way (failures, state, usage);
4. the terminal snapshot, after which the sequence ends.

A terminal state is only ever reported by the last event: text events of the batch
that ended a job carry it as RUNNING, so a client that stops at the first terminal
state has seen every text.

A job with labels has its entity balance on every event: counted by the SQL once, over
the texts of the first snapshot, then advanced by each new text (balance_updates.py),
so an event costs no recount of the job. Edits and discards made meanwhile are not
seen until the next watch, which counts again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from services.task_store import balance_updates, job_states
from services.task_store.records import EntityBalance, Job, JobState, StagedText
from services.task_store.repository.entity_balance import EntityBalanceRepository
from services.task_store.repository.jobs import JOB_CHANNEL, JobRepository

log = logging.getLogger(__name__)

SAFETY_NET_SECONDS = 2.0
# Texts read per query while catching up; a watcher far behind reads several batches.
_TEXT_BATCH = 500


class Subscription:
    """A watcher's doorbell: rung by the hub when its job changes, or to stop it."""

    def __init__(self, hub: JobEventHub, job_id: str) -> None:
        self._hub = hub
        self.job_id = job_id
        self._rung = threading.Event()

    def ring(self) -> None:
        self._rung.set()

    def wait(self, timeout: float) -> bool:
        """Block until rung or `timeout`; True when rung. A ring that arrives while the
        watcher reads is kept for the next wait, so no change goes unread."""
        rung = self._rung.wait(timeout)
        self._rung.clear()
        return rung

    def close(self) -> None:
        self._hub._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class JobEventHub:
    """One LISTEN connection per process, fanning job-change notifications out to the
    subscriptions of each job."""

    def __init__(self, conninfo: str, *, channel: str = JOB_CHANNEL) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="task-store-job-events", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Start listening; returns once LISTEN is active, so no later change is missed."""
        self._thread.start()
        if not self._listening.wait(timeout):
            raise RuntimeError("the job event listener could not connect to the database")

    def subscribe(self, job_id: str) -> Subscription:
        subscription = Subscription(self, job_id)
        with self._lock:
            self._subscriptions[job_id].add(subscription)
        return subscription

    def close(self) -> None:
        self._closed.set()
        self._ring_all()
        self._thread.join(timeout=5)

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            watchers = self._subscriptions.get(subscription.job_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._subscriptions[subscription.job_id]

    def _dispatch(self, job_id: str) -> None:
        with self._lock:
            watchers = list(self._subscriptions.get(job_id, ()))
        for subscription in watchers:
            subscription.ring()

    def _ring_all(self) -> None:
        with self._lock:
            watchers = [s for group in self._subscriptions.values() for s in group]
        for subscription in watchers:
            subscription.ring()

    def _listen(self) -> None:
        backoff = 0.1
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._listening.set()
                    # Changes made while we were not listening were not announced.
                    self._ring_all()
                    backoff = 0.1
                    while not self._closed.is_set():
                        # The timeout only bounds how long close() waits for this thread.
                        for notify in conn.notifies(timeout=0.5):
                            self._dispatch(notify.payload)
            except psycopg.Error as error:
                if self._closed.is_set():
                    return
                log.warning(
                    "job event listener lost its connection; reconnecting", extra={"error": type(error).__name__}
                )
                self._ring_all()
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 5.0)


@dataclass(frozen=True)
class WatchEvent:
    job: Job
    # The text this event announces, if it announces one.
    text: StagedText | None = None
    # The job's entity balance after the event; None for a job without labels.
    balance: EntityBalance | None = None


def follow_job(
    repository: JobRepository,
    balances: EntityBalanceRepository,
    hub: JobEventHub,
    project: str,
    job_id: str,
    *,
    is_active: Callable[[], bool],
    on_stop: Callable[[Callable[[], None]], object] | None = None,
    safety_net_seconds: float = SAFETY_NET_SECONDS,
) -> Iterator[WatchEvent]:
    """The events of one watch (see the module docstring), until the job ends or
    `is_active()` turns false. `on_stop` registers a callback to run when the caller
    goes away (grpc's `context.add_callback`), so a cancelled watch ends at once."""
    with hub.subscribe(job_id) as subscription:
        if on_stop is not None:
            on_stop(subscription.ring)
        # Subscribed first, read second: a change committed in between still rings.
        job, last_seq = repository.job_snapshot(project, job_id)
        # Up to the snapshot's newest text: the newer ones arrive as events and are added
        # one by one, so none is counted twice even if written while this query runs.
        balance = balances.entity_balance(project, job_id, through_seq=last_seq) if job.labels else None
        yield WatchEvent(job, balance=_shown(balance, job))
        if job.state in job_states.TERMINAL:
            return
        last_version = job.version
        while is_active():
            subscription.wait(safety_net_seconds)
            if not is_active():
                return
            while True:
                job, texts = repository.job_progress(project, job_id, last_seq, _TEXT_BATCH)
                shown = _while_running(job)
                for text in texts:
                    if balance is not None:
                        balance = balance_updates.with_text(balance, text, job.variable_labels)
                    yield WatchEvent(shown, text, _shown(balance, shown))
                    last_seq = text.seq
                    last_version = job.version
                if len(texts) < _TEXT_BATCH:
                    break
            if job.state in job_states.TERMINAL:
                yield WatchEvent(job, balance=_shown(balance, job))
                return
            if job.version != last_version:
                yield WatchEvent(job, balance=_shown(balance, job))
                last_version = job.version


def _shown(balance: EntityBalance | None, job: Job) -> EntityBalance | None:
    """The balance as an event shows it: its dropped spans are the job's own count, as
    the SQL reads them, taken from the job the event carries."""
    return None if balance is None else dataclasses.replace(balance, dropped_spans=job.dropped_spans)


def _while_running(job: Job) -> Job:
    """The job as text events show it: an ended job is still reported as running."""
    if job.state not in job_states.TERMINAL:
        return job
    return dataclasses.replace(job, state=JobState.RUNNING, end_time=None, error=None)
