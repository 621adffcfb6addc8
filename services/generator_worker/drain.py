"""Graceful stop of a worker process (SIGTERM: every scale-down, every rollout).

Dramatiq's worker, told to stop, calls this middleware's `before_worker_shutdown` first,
then stops its threads, waits for them up to its shutdown timeout and puts the
prefetched messages back on the queue. Here, at that first step, the process is marked
as draining and the generation engine (generation.py) reacts:

- no provider call starts any more: requests waiting for capacity or backing off give
  up, and their slots are handed back to the queue at once, for other workers;
- calls in flight run to their end and their results are stored, so nothing paid for is
  thrown away; then each message is acked;
- a message taken after this point is handed back whole without being read.

The hook itself stops the worker threads from taking messages and waits, up to the grace
(Settings.shutdown_grace_seconds), until the messages running have ended: dramatiq's
own wait cannot be relied on for this (its join_all takes the time already spent off
the remaining timeout once per thread, so with 64 threads ending at different times
the timeout runs out within seconds and the event loop is stopped under the calls in
flight). Only if the grace runs out are calls still in flight abandoned (their messages
are redelivered after the broker's heartbeat timeout and redone)."""

from __future__ import annotations

import logging
import threading
import time

from dramatiq import MessageProxy, Worker
from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)


class Drain(Middleware):
    def __init__(self, grace_seconds: float) -> None:
        self._grace_seconds = grace_seconds
        self._started = threading.Event()
        self._running: set[str] = set()
        self._changed = threading.Condition()

    def draining(self) -> bool:
        return self._started.is_set()

    def before_process_message(self, broker: object, message: MessageProxy) -> None:
        with self._changed:
            self._running.add(message.message_id)

    def after_process_message(
        self, broker: object, message: MessageProxy, *, result: object = None, exception: BaseException | None = None
    ) -> None:
        self._ended(message)

    def after_skip_message(self, broker: object, message: MessageProxy) -> None:
        self._ended(message)

    def before_worker_shutdown(self, broker: object, worker: Worker) -> None:
        log.info("draining: no new provider calls; finishing the calls in flight")
        self._started.set()
        for thread in worker.workers:
            thread.stop()  # takes no further message once its current one has ended
        deadline = time.monotonic() + self._grace_seconds
        with self._changed:
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            if self._running:
                log.warning("drain grace ran out", extra={"messages_running": len(self._running)})

    def _ended(self, message: MessageProxy) -> None:
        with self._changed:
            self._running.discard(message.message_id)
            self._changed.notify_all()
