"""Micro-batching of results to the task store: one AppendResults per 16 results or per
100 ms (Settings.append_*), whichever comes first, and one at the end of a range, so the
task store is not called once per text and a one-text job is not delayed either.

Flushes run one at a time per sink (results that arrive meanwhile wait for the next
one). A caller that needs the outcome of its slot (a `unique` job deciding whether to
regenerate a refused duplicate) asks for a future; the others do not wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from synthtasks.internal.v1 import job_store_service_pb2 as store_pb

from services.generator_worker.errors import JobStopped
from services.generator_worker.job_store import TERMINAL_STATES, JobStoreClient
from services.runtime.metrics import GENERATION_TEXTS

log = logging.getLogger(__name__)

# The most results in one AppendResults; more pending wait for the next flush.
_MAX_PER_CALL = 256


class ResultSink:
    def __init__(
        self,
        job_store: JobStoreClient,
        job: str,
        *,
        max_batch: int = 16,
        max_delay_seconds: float = 0.1,
        on_job_ended: Callable[[int], None] | None = None,
    ) -> None:
        self._job_store = job_store
        self._job = job
        self._max_batch = max_batch
        self._max_delay = max_delay_seconds
        self._on_job_ended = on_job_ended
        self._pending: list[tuple[store_pb.SlotResult, asyncio.Future | None]] = []
        self._extra_prompt_tokens = 0
        self._extra_completion_tokens = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task] = set()
        self._error: BaseException | None = None
        # A flush task exists that has not taken its batch yet: it will take new results too.
        self._queued = False

    def add(self, result: store_pb.SlotResult, *, want_outcome: bool = False) -> asyncio.Future | None:
        """Queue one result; with `want_outcome`, a future of its SlotOutcome."""
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        future = loop.create_future() if want_outcome else None
        self._pending.append((result, future))
        if len(self._pending) >= self._max_batch:
            self._flush_soon()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_delay, self._flush_soon)
        return future

    def add_extra_tokens(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Tokens spent on replies that hold no text (filtered, empty); sent with the next flush."""
        self._extra_prompt_tokens += prompt_tokens
        self._extra_completion_tokens += completion_tokens

    async def close(self) -> None:
        """Flush everything still pending; raises the first flush failure."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        while self._error is None and (self._pending or self._extra_prompt_tokens or self._extra_completion_tokens):
            await self._flush()
        if self._error is not None:
            raise self._error

    def discard(self) -> None:
        """Drop what is pending (the job ended); waiting callers get JobStopped."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        for _, future in pending:
            if future is not None and not future.done():
                future.set_exception(JobStopped(self._job))

    def _flush_soon(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queued:
            return
        self._queued = True
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        async with self._lock:
            self._queued = False
            if self._error is not None:
                return
            batch, self._pending = self._pending[:_MAX_PER_CALL], self._pending[_MAX_PER_CALL:]
            extra_prompt, extra_completion = self._extra_prompt_tokens, self._extra_completion_tokens
            if not batch and not extra_prompt and not extra_completion:
                return
            self._extra_prompt_tokens = self._extra_completion_tokens = 0
            try:
                response = await self._job_store.append_results(
                    self._job,
                    [result for result, _ in batch],
                    extra_prompt_tokens=extra_prompt,
                    extra_completion_tokens=extra_completion,
                )
            except BaseException as error:
                self._error = error
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(error)
                if isinstance(error, JobStopped) and self._on_job_ended is not None:
                    self._on_job_ended(0)
                if not isinstance(error, Exception):
                    raise
                return
            outcomes = {outcome.slot: outcome for outcome in response.outcomes}
            for result, future in batch:
                outcome = outcomes.get(result.slot) or store_pb.SlotOutcome(slot=result.slot)
                _count(result, outcome)
                if future is not None and not future.done():
                    future.set_result(outcome)
            if response.state in TERMINAL_STATES and self._on_job_ended is not None:
                self._on_job_ended(response.state)
            if len(self._pending) >= self._max_batch:
                self._flush_soon()
            elif self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._max_delay, self._flush_soon)


def _count(result: store_pb.SlotResult, outcome: store_pb.SlotOutcome) -> None:
    if not outcome.written:
        return
    if result.HasField("failure"):
        GENERATION_TEXTS.labels("failed").inc()
    elif outcome.duplicate:
        GENERATION_TEXTS.labels("duplicate").inc()
    else:
        GENERATION_TEXTS.labels("produced").inc()
