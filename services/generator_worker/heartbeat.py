"""The workers' broker heartbeat: keeps each worker process marked alive in the broker
and drives redelivery of dead processes' messages (see generation_queue/broker.py for why
maintenance runs on every command and what the heartbeat timeout is)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import redis
from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from dramatiq.middleware import Middleware

from services.generation_queue.messages import QUEUE_NAME

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_SECONDS = 1.0


class Heartbeat(Middleware):
    """Keeps this worker process marked alive in the broker and drives redelivery of the
    messages of dead ones, from a thread of its own (see the module docstring)."""

    def __init__(self, interval_seconds: float = HEARTBEAT_INTERVAL_SECONDS) -> None:
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Broker, worker: object) -> None:
        if not isinstance(broker, RedisBroker):
            raise TypeError(f"the heartbeat needs a RedisBroker, not {type(broker).__name__}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker,), name="broker-heartbeat", daemon=True)
        self._thread.start()

    def after_worker_shutdown(self, broker: Broker, worker: object) -> None:
        # Not before: while a stopping worker drains (drain.py) its messages stay unacked,
        # and a silent process would have them redelivered under its feet.
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_seconds * 2)

    def _run(self, broker: RedisBroker) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                beat(broker, _queues(broker))
            except redis.RedisError as error:
                # The consumers see the same outage and reconnect; a missed beat only
                # risks another worker redoing some slots.
                log.warning("broker heartbeat failed", extra={"error": type(error).__name__})


def beat(broker: RedisBroker, queues: Iterable[str]) -> None:
    """One heartbeat: a cheap command per queue (records the heartbeat, and maintenance
    runs on every command of our brokers)."""
    for queue in queues:
        broker.do_qsize(queue)


def _queues(broker: RedisBroker) -> list[str]:
    declared = broker.get_declared_queues() or {QUEUE_NAME}
    return sorted({*declared, *(dq_name(q) for q in declared)})
