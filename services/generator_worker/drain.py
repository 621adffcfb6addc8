"""Graceful stop of a worker process (SIGTERM: every scale-down, every rollout).

Dramatiq's worker, told to stop, first stops its threads from taking new messages and
waits up to its shutdown timeout (`--worker-shutdown-timeout`, from
Settings.shutdown_grace_seconds) for the messages they run; it then puts the prefetched
ones back on the queue. This middleware marks the process as draining at that moment,
and the generation engine (generation.py) reacts:

- no provider call starts any more: requests waiting for capacity or backing off give
  up, and their slots are handed back to the queue at once, for other workers;
- calls in flight run to their end and their results are stored, so nothing paid for is
  thrown away; then each message is acked and the process exits;
- a message taken after this point is handed back whole without being read.

Only if the grace runs out are the calls still in flight abandoned (their messages are
redelivered after the broker's heartbeat timeout and redone)."""

from __future__ import annotations

import logging
import threading

from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)


class Drain(Middleware):
    def __init__(self) -> None:
        self._started = threading.Event()

    def draining(self) -> bool:
        return self._started.is_set()

    def before_worker_shutdown(self, broker: object, worker: object) -> None:
        log.info("draining: no new provider calls; finishing the calls in flight")
        self._started.set()
