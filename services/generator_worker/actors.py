"""The dramatiq actor of the generator workers, and the broker it runs on.

Run with `synthtasks-worker` (or `dramatiq services.generator_worker.actors`): dramatiq's
CLI imports this module in every worker process, which builds the broker from the
environment (Settings) and declares the actor on it.

Concurrency: the actor is async; dramatiq's AsyncIO middleware runs one event loop per
process and each worker thread hands one message (one slot range) to it at a time and
then only waits (no CPU, no thread per call). With T threads and S slots per message a
process has up to T x S slots in hand, all their provider calls in flight on the one
loop, capped by the provider's shared limits (limiter.py). Defaults: T = 16, S = 64
(messages.py), i.e. up to 1,024 calls in flight per process.

A thread is never held for long by a provider without capacity: a request that would
wait more than `capacity_wait_seconds` hands its slots back to the queue, delayed until
capacity is expected (generation.py), so threads and prefetched messages stay free for
other providers' work. On SIGTERM the process drains (drain.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import dramatiq
import redis
from dramatiq import Retry
from dramatiq.asyncio import EventLoopThread, set_event_loop_thread
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware
from opentelemetry.trace import SpanKind

from services.generation_queue.backlog import FairDispatch
from services.generation_queue.broker import TRACE_CONTEXT_OPTION, create_broker
from services.generation_queue.messages import ACTOR_NAME, QUEUE_NAME, SlotRange
from services.generator_worker.config import Settings
from services.generator_worker.context import context_for_running_loop
from services.generator_worker.drain import Drain
from services.generator_worker.errors import BadMessage, DependencyUnavailable
from services.generator_worker.generation import fill_slot_range
from services.generator_worker.heartbeat import Heartbeat
from services.generator_worker.liveness import HEARTBEAT_DIR_ENV, LoopHeartbeat
from services.runtime.json_logging import configure_logging
from services.runtime.tracing import configure_tracing, continued_from, span

log = logging.getLogger(__name__)

SERVICE = "generator-worker"
# A range normally takes seconds; the limit only catches a message stuck for good (it is
# then retried, redoing only its unfilled slots). Generous because waiting for a
# provider's per-minute budget is legitimate and can take minutes.
TIME_LIMIT_MS = 30 * 60 * 1000
# Infrastructure errors only (task store, registry or Redis down): exponential backoff
# from 1 s to 60 s, ~15 minutes in all before the message is dead-lettered.
MAX_RETRIES = 20
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 60_000
_INTERRUPT_CHECK_SECONDS = 1.0


class _DaemonAsyncIO(AsyncIO):
    """dramatiq's AsyncIO middleware with a daemon event-loop thread.

    dramatiq's loop thread is not a daemon: when a worker process is told to stop twice
    (e.g. SIGTERM sent to the whole process group: once directly, once forwarded by the
    parent) it calls sys.exit without stopping the loop, and the interpreter then waits
    on that thread forever. A daemon thread lets the exit happen; the normal, graceful
    stop still stops the loop in after_worker_shutdown."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Each busy worker thread wakes this often to look for dramatiq's asynchronous
        # interrupts (the time limit only: shutdown does not interrupt); 64 threads
        # waking ten times a second would cost CPU for nothing.
        thread = EventLoopThread(self.logger, interrupt_check_ival=_INTERRUPT_CHECK_SECONDS)
        thread.daemon = True
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)


class _ProcessSetup(Middleware):
    """JSON logging and traces in each worker process (after dramatiq pointed stderr at its
    log pipe), and how often its idle consumer polls Redis."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # The floor of the time from enqueue to a worker's first call: an idle consumer
        # sleeps up to this long between polls. Set on the Worker, before it creates its
        # consumer, because dramatiq reads its dramatiq_worker_timeout variable once, at
        # the import of dramatiq.worker, which anything may trigger first (it cost every
        # job up to a second, dramatiq's default, before the first call).
        worker.worker_timeout = self._settings.poll_interval_ms

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging(SERVICE, self._settings.log_level)
        # Here, not in the parent: the span exporter's thread does not survive the fork.
        configure_tracing(SERVICE)


settings = Settings()
broker = create_broker(
    settings.redis_url,
    namespace=settings.redis_namespace,
    heartbeat_timeout_ms=settings.heartbeat_timeout_ms,
)
broker.add_middleware(_DaemonAsyncIO())
broker.add_middleware(Heartbeat(settings.heartbeat_interval_seconds))
# After _DaemonAsyncIO: it beats on the process's event loop.
broker.add_middleware(LoopHeartbeat(os.environ.get(HEARTBEAT_DIR_ENV)))
broker.add_middleware(FairDispatch(settings.queue_ready_messages))
broker.add_middleware(_ProcessSetup(settings))
# Lets the actor read its message's options: the trace context the gateway put there.
broker.add_middleware(CurrentMessage())
drain = Drain(settings.shutdown_grace_seconds)
broker.add_middleware(drain)
dramatiq.set_broker(broker)


@dramatiq.actor(
    actor_name=ACTOR_NAME,
    queue_name=QUEUE_NAME,
    broker=broker,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(BadMessage,),
    # Not interrupted on SIGTERM: the engine drains instead (drain.py), so calls in
    # flight end and are stored rather than paid for and redone elsewhere.
    notify_shutdown=False,
)
async def generate_slots(slot_range: dict[str, Any]) -> None:
    """Fill one range of slots of one job (see generation.py); idempotent."""
    try:
        parsed = SlotRange.from_dict(slot_range)
    except ValueError as error:
        raise BadMessage(str(error)) from None
    message = CurrentMessage.get_current_message()
    carrier = message.options.get(TRACE_CONTEXT_OPTION, {}) if message is not None else {}
    try:
        with (
            continued_from(carrier),
            span(
                "generate_slots",
                SpanKind.CONSUMER,
                job=parsed.job,
                first_slot=parsed.first_slot,
                slot_count=parsed.slot_count,
            ),
        ):
            await fill_slot_range(context_for_running_loop(settings, broker, drain.draining), parsed)
    except (DependencyUnavailable, redis.RedisError) as error:
        # Retry without a delay of our own: dramatiq backs off from min to max_backoff.
        log.warning("retrying later", extra={"job": parsed.job, "first_slot": parsed.first_slot, "error": str(error)})
        raise Retry(str(error)) from None
