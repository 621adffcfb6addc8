"""The Dramatiq broker on Redis that gateway and workers share, tuned so that a worker
killed with SIGKILL has its messages redelivered within seconds, and the message of a
slot range. Work reaches the queue through the fair backlog (backlog.py), never directly.

How dramatiq 2.2's RedisBroker redelivers (brokers/redis/dispatch.lua): every command a
process sends records a heartbeat for its broker id; a fetched message sits in that
process's ack set until it is acked. "Maintenance" - run by a command with probability
maintenance_chance / 1,000,000 and only for the queue that command names - moves the
unacked messages of processes silent for `heartbeat_timeout` ms back to the queue. With
the defaults (60 s, 0.1 %) a killed worker's messages wait minutes. So:

- `heartbeat_timeout` is 5 s (Settings.heartbeat_timeout_ms);
- maintenance runs on every command: when nobody is dead it costs two ZRANGEBYSCOREs;
- the workers' `Heartbeat` middleware (generator_worker/heartbeat.py) sends a cheap
  command per queue (the main queue and its delay queue) every second. That keeps a
  busy process alive even when its prefetch is full and no fetch or ack happens for a
  while (a message waiting on a rate limit), and it drives maintenance on both queues even when every consumer is busy.

Redelivery is therefore heartbeat_timeout + at most a second after the kill; a process
wrongly presumed dead (frozen > 5 s) only makes another worker redo slots that are
written at most once."""

from __future__ import annotations

from dramatiq import Message
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Middleware

from services.generation_queue.messages import ACTOR_NAME, QUEUE_NAME, SlotRange
from services.runtime.tracing import trace_carrier

HEARTBEAT_TIMEOUT_MS = 5_000


def create_broker(
    redis_url: str,
    *,
    namespace: str,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
    middleware: list[Middleware] | None = None,
) -> RedisBroker:
    """A RedisBroker whose keys all start with `namespace` (see the module docstring for
    the redelivery knobs). `middleware=None` keeps dramatiq's defaults."""
    return RedisBroker(
        url=redis_url,
        namespace=namespace,
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=MAINTENANCE_SCALE,
        middleware=middleware,
    )


# Message option holding the enqueuer's trace context (W3C fields): the worker continues
# the trace of the request that created the job (services/runtime/tracing.py).
TRACE_CONTEXT_OPTION = "trace_context"


def slot_range_message(slot_range: SlotRange) -> Message:
    """The message the `generate_slots` actor consumes for one range."""
    carrier = trace_carrier()
    return Message(
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        args=(slot_range.to_dict(),),
        kwargs={},
        options={TRACE_CONTEXT_OPTION: carrier} if carrier else {},
    )
