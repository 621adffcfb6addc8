"""The message contract and the broker: slot ranges survive their message form, and the
messages of a dead worker come back within seconds. (What the gateway enqueues reaching
a worker: tests/generation_queue/test_backlog.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq import Worker

from services.generation_queue.broker import create_broker, slot_range_message
from services.generation_queue.messages import ACTOR_NAME, QUEUE_NAME, SlotRange, slot_ranges
from services.generator_worker.heartbeat import Heartbeat, beat
from tests.infrastructure import Infrastructure


def test_slot_ranges_cover_every_slot_once_in_ranges_of_at_most_the_given_size() -> None:
    ranges = slot_ranges("projects/p/generationJobs/j", 35, 16)

    assert [(r.first_slot, r.slot_count) for r in ranges] == [(0, 16), (16, 16), (32, 3)]
    assert [s for r in ranges for s in r.slots] == list(range(35))


def test_a_slot_range_survives_its_dict_form_and_refuses_anything_else() -> None:
    original = SlotRange("projects/p/generationJobs/j", 16, 16)

    assert SlotRange.from_dict(original.to_dict()) == original
    for bad in [
        None,
        {},
        {"job": "x", "first_slot": -1, "slot_count": 1},
        {**original.to_dict(), "extra": 1},
        {"job": "x", "first_slot": 0, "slot_count": 0},
        {"job": "", "first_slot": 0, "slot_count": 1},
        {"job": "x", "first_slot": "0", "slot_count": 1},
    ]:
        with pytest.raises(ValueError):
            SlotRange.from_dict(bad)


@pytest.fixture
def namespace(redis_namespace: str, request: pytest.FixtureRequest) -> str:
    return f"{redis_namespace}-{request.node.name[:40]}"


@pytest.fixture
def received() -> Iterator[list[dict]]:
    yield []


def _declare_recorder(broker: dramatiq.Broker, received: list[dict]) -> None:
    @dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=broker, max_retries=0)
    def record(slot_range: dict) -> None:
        received.append(slot_range)


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_messages_of_a_silent_worker_are_redelivered_after_the_heartbeat_timeout(
    infra: Infrastructure, namespace: str, received: list[dict]
) -> None:
    dead = create_broker(infra.redis_url, namespace=namespace, heartbeat_timeout_ms=1_000)
    dead.declare_queue(QUEUE_NAME)
    for slot_range in slot_ranges("projects/p/generationJobs/j", 32, 16):
        dead.enqueue(slot_range_message(slot_range))
    # The "dead" worker fetches both messages and is never heard of again (like SIGKILL).
    # Its last heartbeat (sent with each fetch) is no earlier than this.
    heard_of_at_least_until = time.monotonic()
    consumer = dead.consume(QUEUE_NAME, prefetch=2, timeout=100)
    fetched = [m for m in (next(consumer) for _ in range(5)) if m is not None]
    assert len(fetched) == 2

    alive = create_broker(infra.redis_url, namespace=namespace, heartbeat_timeout_ms=1_000)
    _declare_recorder(alive, received)
    heartbeat = Heartbeat(interval_seconds=0.2)
    alive.add_middleware(heartbeat)
    worker = Worker(alive, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        assert _wait_for(lambda: len(received) == 2, 30)
    finally:
        worker.stop()

    # Not before the dead worker's heartbeat timed out (how soon after is for bench/).
    assert time.monotonic() - heard_of_at_least_until >= 1.0


def test_a_heartbeat_keeps_a_busy_worker_alive(infra: Infrastructure, namespace: str) -> None:
    busy = create_broker(infra.redis_url, namespace=namespace, heartbeat_timeout_ms=1_000)
    busy.declare_queue(QUEUE_NAME)
    busy.enqueue(slot_range_message(SlotRange("projects/p/generationJobs/j", 0, 1)))
    consumer = busy.consume(QUEUE_NAME, prefetch=1, timeout=100)
    assert any(next(consumer) is not None for _ in range(5))

    stop = threading.Event()

    def keep_beating() -> None:
        while not stop.wait(0.2):
            beat(busy, [QUEUE_NAME])

    beating = threading.Thread(target=keep_beating, daemon=True)
    beating.start()
    other = create_broker(infra.redis_url, namespace=namespace, heartbeat_timeout_ms=1_000)
    try:
        for _ in range(15):  # 3 s of maintenance from another process's point of view
            beat(other, [QUEUE_NAME])
            time.sleep(0.2)
        assert other.do_qsize(QUEUE_NAME) == 1  # still in the busy worker's ack set
        assert not other.client.lrange(f"{namespace}:{QUEUE_NAME}", 0, -1)
    finally:
        stop.set()
        beating.join()
