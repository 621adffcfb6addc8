"""Handing slots back to the queue: a worker that will not fill some slots of its message
(their provider has no capacity for a while, or the worker is shutting down) enqueues
them again as new messages and acks its own, instead of holding them.

Slots are written at most once, so a handed-back slot that some other copy of the work
fills first is simply skipped by whoever runs it next. Runs of consecutive slots become
one message each; a delay uses Dramatiq's own delay queue (`RedisBroker.enqueue(...,
delay=ms)`): the message waits there, held by no worker thread, until it is due."""

from __future__ import annotations

from collections.abc import Iterable

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from services.generation_queue.broker import slot_range_message
from services.generation_queue.messages import DEFAULT_SLOTS_PER_MESSAGE, SlotRange


def slot_runs(job: str, slots: Iterable[int], max_slots: int = DEFAULT_SLOTS_PER_MESSAGE) -> list[SlotRange]:
    """The fewest ranges of at most `max_slots` consecutive slots that cover `slots` exactly."""
    ranges: list[SlotRange] = []
    first: int | None = None
    previous = 0
    for slot in sorted(set(slots)):
        if first is None:
            first = previous = slot
        elif slot == previous + 1 and slot - first < max_slots:
            previous = slot
        else:
            ranges.append(SlotRange(job, first, previous - first + 1))
            first = previous = slot
    if first is not None:
        ranges.append(SlotRange(job, first, previous - first + 1))
    return ranges


def hand_back(broker: RedisBroker, job: str, slots: Iterable[int], *, delay_ms: int = 0) -> list[Message]:
    """Enqueue `slots` of `job` again, due in `delay_ms` (0: at once); returns the messages."""
    return [
        broker.enqueue(slot_range_message(slot_range), delay=delay_ms or None) for slot_range in slot_runs(job, slots)
    ]
