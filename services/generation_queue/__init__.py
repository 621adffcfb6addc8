"""The queue contract between the gateway (which enqueues generation work and stops jobs)
and the generator workers (which consume it). Both import this package; neither imports
the other.

- messages: QUEUE_NAME, ACTOR_NAME, SlotRange, slot_ranges, DEFAULT_SLOTS_PER_MESSAGE
- broker: create_broker, enqueue_slot_ranges (the Dramatiq Redis broker both sides use)
- stop_flags: the per-job "stopped" flag workers check before every provider call
- prompts: the prompt template grammar and how slots get variable values
"""
