"""Micro-batching of results to the task store, per job and process: the messages of one
job that a process runs at the same time (up to 64 by default) share one batch, flushed
per 16 results or 100 ms (Settings.append_*), whichever comes first, and whenever a
message ends, so the task store is not called once per text (nor once per message every
100 ms) and a one-text job is not delayed either.

Up to 4 flushes of a job run at a time (results that arrive meanwhile wait for the next
one, which takes all of them up to 256): a slow task store makes batches larger rather
than messages wait in line. Every result gets a future of its SlotOutcome: a message waits for its own results
when it ends, and a `unique` job deciding whether to regenerate a refused duplicate waits
for one as it goes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from synthtasks.internal.v1 import job_store_service_pb2 as store_pb

from services.generator_worker.errors import JobStopped
from services.generator_worker.job_store import TERMINAL_STATES, JobStoreClient
from services.generator_worker.metrics import GENERATION_TEXTS

log = logging.getLogger(__name__)

# The most results in one AppendResults; more pending wait for the next flush.
_MAX_PER_CALL = 256
_MAX_FLUSHES_IN_FLIGHT = 4


class JobResults:
    """The batch of one job's results in this process, shared by its ResultSinks."""

    def __init__(
        self,
        job_store: JobStoreClient,
        job: str,
        *,
        max_batch: int = 16,
        max_delay_seconds: float = 0.1,
        on_idle: Callable[[JobResults], None] | None = None,
    ) -> None:
        self.job = job
        self._job_store = job_store
        self._max_batch = max_batch
        self._max_delay = max_delay_seconds
        self._on_idle = on_idle
        self._pending: list[tuple[store_pb.SlotResult, asyncio.Future]] = []
        self._extra_prompt_tokens = 0
        self._extra_completion_tokens = 0
        # Resolved by the flush that carries the extra tokens added so far.
        self._extra_future: asyncio.Future | None = None
        self._flush_slots = asyncio.Semaphore(_MAX_FLUSHES_IN_FLIGHT)
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task] = set()
        # A flush task exists that has not taken its batch yet: it will take new results too.
        self._queued = False
        self._listeners: set[Callable[[int], None]] = set()
        self.users = 0

    def attach(self, on_job_ended: Callable[[int], None] | None) -> None:
        self.users += 1
        if on_job_ended is not None:
            self._listeners.add(on_job_ended)

    def detach(self, on_job_ended: Callable[[int], None] | None) -> None:
        self.users -= 1
        self._listeners.discard(on_job_ended)
        if self.users == 0 and self._on_idle is not None:
            self._on_idle(self)

    def add(self, result: store_pb.SlotResult) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        self._schedule()
        return future

    def add_extra_tokens(self, prompt_tokens: int, completion_tokens: int) -> asyncio.Future:
        """Tokens spent on replies that hold no text (filtered, empty); sent with the next flush."""
        self._extra_prompt_tokens += prompt_tokens
        self._extra_completion_tokens += completion_tokens
        if self._extra_future is None:
            self._extra_future = asyncio.get_running_loop().create_future()
        future = self._extra_future
        self._schedule()
        return future

    def flush_soon(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queued:
            return
        self._queued = True
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _schedule(self) -> None:
        if len(self._pending) >= self._max_batch:
            self.flush_soon()
        elif self._timer is None and not self._queued:
            self._timer = asyncio.get_running_loop().call_later(self._max_delay, self.flush_soon)

    def _notify(self, state: int) -> None:
        for listener in list(self._listeners):
            listener(state)

    async def _flush(self) -> None:
        async with self._flush_slots:
            self._queued = False
            batch, self._pending = self._pending[:_MAX_PER_CALL], self._pending[_MAX_PER_CALL:]
            extra_prompt, extra_completion = self._extra_prompt_tokens, self._extra_completion_tokens
            extra_future, self._extra_future = self._extra_future, None
            self._extra_prompt_tokens = self._extra_completion_tokens = 0
            futures = [future for _, future in batch] + ([extra_future] if extra_future is not None else [])
            if batch or extra_prompt or extra_completion:
                try:
                    response = await self._job_store.append_results(
                        self.job,
                        [result for result, _ in batch],
                        extra_prompt_tokens=extra_prompt,
                        extra_completion_tokens=extra_completion,
                    )
                except BaseException as error:
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                            future.exception()  # retrieved: a message that gave up waiting is no loss
                    if isinstance(error, JobStopped):
                        self._notify(0)
                    if not isinstance(error, Exception):
                        raise
                    return
                outcomes = {outcome.slot: outcome for outcome in response.outcomes}
                for result, future in batch:
                    outcome = outcomes.get(result.slot) or store_pb.SlotOutcome(slot=result.slot)
                    _count(result, outcome)
                    if not future.done():
                        future.set_result(outcome)
                if response.state in TERMINAL_STATES:
                    self._notify(response.state)
            if extra_future is not None and not extra_future.done():
                extra_future.set_result(None)
            if self._pending:
                self._schedule()


class ResultSink:
    """One message's view of its job's JobResults: what it added, to wait for at its end."""

    def __init__(self, shared: JobResults, *, on_job_ended: Callable[[int], None] | None = None) -> None:
        self._shared = shared
        self._on_job_ended = on_job_ended
        self._futures: list[asyncio.Future] = []
        self._attached = True
        shared.attach(on_job_ended)

    def add(self, result: store_pb.SlotResult, *, want_outcome: bool = False) -> asyncio.Future | None:
        """Queue one result; with `want_outcome`, the future of its SlotOutcome."""
        future = self._shared.add(result)
        self._futures.append(future)
        return future if want_outcome else None

    def add_extra_tokens(self, prompt_tokens: int, completion_tokens: int) -> None:
        self._futures.append(self._shared.add_extra_tokens(prompt_tokens, completion_tokens))

    async def close(self) -> None:
        """Flush what this message added and wait for it; raises the first flush failure."""
        try:
            if any(not future.done() for future in self._futures):
                self._shared.flush_soon()
            outcomes = await asyncio.gather(*self._futures, return_exceptions=True)
        finally:
            self._detach()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def discard(self) -> None:
        """The job ended: stop waiting for this message's results (the shared batch still
        sends them; the task store refuses them)."""
        self._detach()

    def _detach(self) -> None:
        if self._attached:
            self._attached = False
            self._shared.detach(self._on_job_ended)


def _count(result: store_pb.SlotResult, outcome: store_pb.SlotOutcome) -> None:
    if not outcome.written:
        return
    if result.HasField("failure"):
        GENERATION_TEXTS.labels("failed").inc()
    elif outcome.duplicate:
        GENERATION_TEXTS.labels("duplicate").inc()
    else:
        GENERATION_TEXTS.labels("produced").inc()
