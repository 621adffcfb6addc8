"""The Dramatiq broker on Redis that gateway and workers share, tuned so that a worker
killed with SIGKILL has its messages redelivered within seconds, and the enqueueing side
the gateway uses.

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

import logging
import uuid
from collections.abc import Sequence

from dramatiq import Message
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import Middleware

from services.generation_queue.messages import ACTOR_NAME, QUEUE_NAME, SlotRange

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_MS = 5_000
# Bounded so that one pipeline never holds Redis for long, whatever the job size.
_PIPELINE_CHUNK = 500


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


def slot_range_message(slot_range: SlotRange) -> Message:
    """The message the `generate_slots` actor consumes for one range."""
    return Message(
        queue_name=QUEUE_NAME,
        actor_name=ACTOR_NAME,
        args=(slot_range.to_dict(),),
        kwargs={},
        options={},
    )


def enqueue_slot_ranges(broker: RedisBroker, ranges: Sequence[SlotRange]) -> list[Message]:
    """Enqueue one message per range in as few round trips as possible.

    Builds `dramatiq.Message`s directly, so the caller (the gateway) needs neither the
    actor nor the provider code, and runs the broker's own enqueue script in a pipeline
    with the same arguments `RedisBroker.enqueue` passes it, one round trip per 500
    messages. Enqueue middleware hooks do not run (the gateway's broker has none that
    act on enqueue). Returns the messages as enqueued."""
    script = broker.scripts["dispatch"]
    enqueued: list[Message] = []
    for start in range(0, len(ranges), _PIPELINE_CHUNK):
        pipe = broker.client.pipeline(transaction=False)
        for slot_range in ranges[start : start + _PIPELINE_CHUNK]:
            # Like RedisBroker.enqueue: every enqueued copy gets a fresh Redis-level id.
            message = slot_range_message(slot_range).copy(options={"redis_message_id": str(uuid.uuid4())})
            script(
                keys=[broker.namespace],
                args=[
                    "enqueue",
                    current_millis(),
                    QUEUE_NAME,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    0,  # no maintenance from the gateway's enqueue
                    0,  # max_unpack_size: read only by fetch and maintenance
                    message.options["redis_message_id"],
                    message.encode(),
                ],
                client=pipe,
            )
            enqueued.append(message)
        pipe.execute()
    return enqueued
