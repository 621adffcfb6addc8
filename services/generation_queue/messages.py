"""The message contract between the gateway (which enqueues) and the workers (which
consume): one message per range of slots of one job.

A job of N texts has slots 0..N-1; slot i is written at most once by the task store, so
a range may be delivered any number of times. Messages carry ids, never job specs: the
worker reads the job from the task store, so a redelivered message never acts on stale
input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUEUE_NAME = "generation"
ACTOR_NAME = "generate_slots"
# 64 slots per message: with 16 threads per worker process, 1,024 provider calls in hand
# per process at a cost of one message (one GetJobWork call) per 64 texts. Smaller
# messages need more threads for the same calls in flight, and each message in hand costs
# the process CPU (2 s calls, 512 allowed: 16 x 64 took 1.3-1.5 CPU s per 1,000 texts,
# 64 x 16 1.6; 100 ms calls, 64 allowed: 570 texts/s against 530-550).
DEFAULT_SLOTS_PER_MESSAGE = 64


@dataclass(frozen=True)
class SlotRange:
    """Slots first_slot .. first_slot + slot_count - 1 of `job` (`projects/{p}/generationJobs/{j}`)."""

    job: str
    first_slot: int
    slot_count: int

    def __post_init__(self) -> None:
        if not isinstance(self.job, str) or not self.job:
            raise ValueError("job must be a job resource name")
        if not isinstance(self.first_slot, int) or isinstance(self.first_slot, bool) or self.first_slot < 0:
            raise ValueError("first_slot must be an integer >= 0")
        if not isinstance(self.slot_count, int) or isinstance(self.slot_count, bool) or self.slot_count < 1:
            raise ValueError("slot_count must be an integer >= 1")

    @property
    def slots(self) -> range:
        return range(self.first_slot, self.first_slot + self.slot_count)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "first_slot": self.first_slot, "slot_count": self.slot_count}

    @classmethod
    def from_dict(cls, data: Any) -> SlotRange:
        """Raises ValueError for anything but the dict `to_dict` makes."""
        if not isinstance(data, dict) or set(data) != {"job", "first_slot", "slot_count"}:
            raise ValueError("a slot range is a dict with exactly job, first_slot and slot_count")
        return cls(job=data["job"], first_slot=data["first_slot"], slot_count=data["slot_count"])


def slot_ranges(job: str, text_count: int, slots_per_message: int = DEFAULT_SLOTS_PER_MESSAGE) -> list[SlotRange]:
    """Cover slots 0..text_count-1 with consecutive ranges of at most `slots_per_message`."""
    if text_count < 0:
        raise ValueError("text_count must be >= 0")
    if slots_per_message < 1:
        raise ValueError("slots_per_message must be >= 1")
    return [
        SlotRange(job, first, min(slots_per_message, text_count - first))
        for first in range(0, text_count, slots_per_message)
    ]
