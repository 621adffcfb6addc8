"""The fair backlog: where generation work waits, shared fairly between projects and
between the jobs of a project, before it enters the Dramatiq queue.

Why: the Dramatiq queue is first in, first out. A project that submits 2,000 jobs puts
2,000 messages ahead of any other project's job, which then waits for all of them.

How: the gateway never pushes a job's slot ranges into the Dramatiq queue; it adds them
to the backlog (`Backlog.enqueue_job`, one round trip per job). A Lua script
(backlog.lua) moves ranges from the backlog into the Dramatiq queue, atomically (a
range is in the backlog or in the queue, never lost in between), only while the queue
holds fewer messages than the workers' low-water mark: a few per live worker process
(`SYNTHTASKS_WORKER_QUEUE_READY_MESSAGES`, 4) plus one per idle thread, at most its
Dramatiq prefetch. So the queue stays shallow and what waits, waits in the backlog, in
fair order. The script runs when the gateway enqueues, before and after every message a
worker processes and once a second in every worker (`FairDispatch`, a Dramatiq
middleware), so the queue refills as fast as workers take from it: an idle worker's
first dispatch fills its threads, each message it starts or ends refills the queue.
Delivery stays Dramatiq's: acks, redelivery of a dead worker's messages, retries.

Policy: start-time fair queueing on two levels, weighted by slots (texts, i.e. provider
calls). Each project with waiting work, and each waiting job inside a project, has a
virtual time; the script takes the project with the least virtual time, from it the job
with the least virtual time, moves that job's next range, and advances both by the
range's slot count. A project (or job) that becomes active starts at the virtual time of
the one served next, behind the flows already there at that virtual time (ties go first
come, first served): it is served within the current round, and it cannot claim a share
for the time it was idle. So a new project's job starts after at most one range of each
active project (after what the queue and the workers already hold), and the jobs of one
project start in the order they were submitted. Counting slots rather than messages
shares provider calls evenly: a project of 16-slot ranges does not get 16 times the calls
of a project of one-text jobs.

Enqueueing is idempotent against the backlog: a range the job still has waiting is not
added again. Recovery (`Backlog.recover_job`, the gateway's stalled-job sweeper) goes
further and adds a job's ranges only when nothing of the job is left anywhere in Redis:
in the backlog, among the messages of the queue and the delay queue (waiting, or held by
a worker), or in its live granted calls; the check and the enqueue are one script run.

A cancelled (or failed) job's waiting ranges are dropped by the gateway when it cancels
(`Backlog.drop_job`) and, should one remain, skipped by the script, which checks the
job's stop flag before moving a range."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from importlib import resources
from typing import Any

import dramatiq
import dramatiq.worker as dramatiq_worker
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware

from services.generation_queue.broker import HEARTBEAT_TIMEOUT_MS, slot_range_message
from services.generation_queue.messages import QUEUE_NAME, SlotRange
from services.generation_queue.stop_flags import stop_key

log = logging.getLogger(__name__)

_SCRIPT = resources.files(__package__).joinpath("backlog.lua").read_text()
# Ranges per script call: bounds how long one call holds Redis, whatever the job size
# (a 1,000-text job has 63 ranges: one call).
_RANGES_PER_CALL = 500
DISPATCH_INTERVAL_SECONDS = 1.0
# Few: what a worker prefetches is served first come, first served; each message a worker
# starts or ends refills the queue, so a few per worker keep every worker supplied.
READY_MESSAGES_PER_WORKER = 4


def backlog_key(namespace: str) -> str:
    """The hash of every waiting range under `namespace`: its length is the backlog size,
    what KEDA's redis scaler reads (HLEN)."""
    return f"{namespace}:{QUEUE_NAME}.backlog"


def project_of(job: str) -> str:
    """`p` of `projects/{p}/generationJobs/{j}`."""
    parts = job.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "generationJobs" or not parts[1]:
        raise ValueError(f"not a generation job name: {job!r}")
    return parts[1]


class Backlog:
    """The fair backlog of the generation queue under one Redis namespace."""

    def __init__(
        self, client: redis.Redis, namespace: str, *, heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._heartbeat_timeout_ms = heartbeat_timeout_ms
        self._script = client.register_script(_SCRIPT)

    @property
    def key(self) -> str:
        return backlog_key(self._namespace)

    @property
    def queue_key(self) -> str:
        """Dramatiq's list of the message ids ready for workers."""
        return f"{self._namespace}:{QUEUE_NAME}"

    def _call(self, command: str, *args: Any, broker_id: str = "", ready: int = 0, client: Any = None) -> Any:
        return self._script(
            keys=[self._namespace],
            args=[
                command,
                QUEUE_NAME,
                stop_key(self._namespace, ""),
                current_millis(),
                self._heartbeat_timeout_ms,
                broker_id,
                ready,
                *args,
            ],
            client=client or self._client,
        )

    def enqueue_job(self, ranges: Sequence[SlotRange]) -> int:
        """Add the ranges of one job (in one round trip), then dispatch. A range the job
        already has waiting in the backlog is not added again (a retried enqueue doubles
        nothing); one already moved to the queue is (the caller may know it was lost).
        Returns how many messages entered the Dramatiq queue."""
        pipe = self._client.pipeline(transaction=False)
        for args in self._chunks(ranges):
            self._call("enqueue", *args, client=pipe)
        return sum(int(moved) for moved in pipe.execute())

    def recover_job(self, ranges: Sequence[SlotRange]) -> bool:
        """Add the ranges of one job, as `enqueue_job`, only if the job has no work left
        anywhere in Redis: no range in the backlog, no message in the Dramatiq queue or
        its delay queue (waiting, prefetched, or held by a worker, live or dead: a dead
        worker's messages are redelivered by Dramatiq), no live granted provider call.
        The check and the enqueue of the first 500 ranges are one script run, so nothing
        moves in between. True when the ranges were added (the job's work had been lost)."""
        chunks = self._chunks(ranges)
        if not chunks or int(self._call("recover", *chunks[0])) < 0:
            return False
        for args in chunks[1:]:
            self._call("enqueue", *args)
        return True

    def _chunks(self, ranges: Sequence[SlotRange]) -> list[list[Any]]:
        """The script arguments adding `ranges`, per call of at most _RANGES_PER_CALL."""
        if not ranges:
            return []
        job = ranges[0].job
        if any(r.job != job for r in ranges):
            raise ValueError("the ranges of one job at a time")
        project = project_of(job)
        chunks = []
        for start in range(0, len(ranges), _RANGES_PER_CALL):
            args: list[Any] = [project, job]
            for slot_range in ranges[start : start + _RANGES_PER_CALL]:
                # Like RedisBroker.enqueue: every enqueued copy gets a fresh Redis-level id.
                message_id = str(uuid.uuid4())
                message = slot_range_message(slot_range).copy(options={"redis_message_id": message_id})
                args += [
                    f"{slot_range.first_slot}+{slot_range.slot_count}",
                    f"{slot_range.slot_count} {message_id}",
                    message.encode(),
                ]
            chunks.append(args)
        return chunks

    def dispatch(self, *, broker_id: str = "", ready: int = 0) -> int:
        """Move ranges into the Dramatiq queue, fairly, up to the low-water mark. A worker
        passes its broker id and how many messages it wants ready in the queue (the mark
        is the sum over live workers); others pass nothing. Returns how many moved."""
        return int(self._call("dispatch", broker_id=broker_id, ready=ready))

    def drop_job(self, job: str) -> int:
        """Forget a job's waiting ranges (it was cancelled); returns how many."""
        return int(self._call("drop", project_of(job), job))

    def forget_worker(self, broker_id: str) -> None:
        """Stop counting a worker process in the low-water mark (it stops)."""
        self._client.hdel(f"{self.key}.workers", broker_id)

    def size(self) -> int:
        """Ranges waiting in the backlog."""
        return int(self._client.hlen(self.key))

    def queue_length(self) -> int:
        """Messages in the Dramatiq queue, not yet fetched by a worker."""
        return int(self._client.llen(self.queue_key))


class FairDispatch(Middleware):
    """The workers' side of the backlog: refills the Dramatiq queue before and after every
    message (so the queue keeps pace with the workers) and every `interval_seconds` (so
    work enqueued while every worker is busy still moves). Each worker process wants
    `ready_messages` in the queue plus one per idle thread, at most its Dramatiq prefetch,
    which it lowers to its thread count plus `ready_messages`: a worker with idle threads
    fills them in one dispatch (a job's first second is not spent refilling 4 messages
    at a time), a busy one keeps only a few waiting, first come, first served."""

    def __init__(
        self, ready_messages: int = READY_MESSAGES_PER_WORKER, interval_seconds: float = DISPATCH_INTERVAL_SECONDS
    ) -> None:
        self.ready_messages = ready_messages
        self.interval_seconds = interval_seconds
        self._backlog: Backlog | None = None
        self._broker_id = ""
        self._worker: dramatiq.Worker | None = None
        # Ids of the messages this process's threads are processing (Dramatiq calls the
        # hooks from every worker thread; an after-hook may come without its before-hook
        # when an earlier middleware refused the message).
        self._processing: set[str] = set()
        self._processing_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Dramatiq prefetches twice as many messages as a process has threads. The extra
        # ones wait in the process, first come, first served, where the backlog cannot
        # order them: with 64 threads, 64 messages of one project ahead of any other's.
        # A few extra are enough for a freed thread to find its next message at once (with
        # none at all, 300 one-text jobs took 45 % longer). An explicit
        # dramatiq_queue_prefetch is left as it is.
        if not dramatiq_worker.QUEUE_PREFETCH:
            worker.queue_prefetch = min(worker.queue_prefetch, worker.worker_threads + self.ready_messages)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, RedisBroker):
            raise TypeError(f"the fair backlog needs a RedisBroker, not {type(broker).__name__}")
        self._backlog = Backlog(broker.client, broker.namespace, heartbeat_timeout_ms=broker.heartbeat_timeout)
        self._broker_id = broker.broker_id
        self._worker = worker
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fair-dispatch", daemon=True)
        self._thread.start()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        with self._processing_lock:
            self._processing.add(message.message_id)
        self._dispatch()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._done_processing(message)
        self._dispatch()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._done_processing(message)
        self._dispatch()

    def _done_processing(self, message: dramatiq.MessageProxy) -> None:
        with self._processing_lock:
            self._processing.discard(message.message_id)

    def wanted_ready(self) -> int:
        """Messages this process wants in the queue now: a few, plus one per thread that
        has no message, counting those fetched and waiting for a thread (Dramatiq's
        work queue) as taken."""
        if self._worker is None:
            return self.ready_messages
        with self._processing_lock:
            processing = len(self._processing)
        idle = max(0, self._worker.worker_threads - processing - self._worker.work_queue.qsize())
        return min(self.ready_messages + idle, self._worker.queue_prefetch)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_seconds * 2)
        if self._backlog is not None:
            try:
                self._backlog.forget_worker(self._broker_id)
            except redis.RedisError as error:
                # Forgotten anyway once its heartbeat is older than the timeout.
                log.warning("could not unregister from the backlog", extra={"error": type(error).__name__})

    def _run(self) -> None:
        # At once on boot: work may have waited in the backlog for a worker to appear.
        self._dispatch()
        while not self._stop.wait(self.interval_seconds):
            self._dispatch()

    def _dispatch(self) -> None:
        if self._backlog is None or self._stop.is_set():
            return
        try:
            self._backlog.dispatch(broker_id=self._broker_id, ready=self.wanted_ready())
        except redis.RedisError as error:
            # The work stays in the backlog; the next message or tick dispatches it.
            log.warning("backlog dispatch failed", extra={"error": type(error).__name__})
