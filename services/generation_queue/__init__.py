"""The queue contract between the gateway (which enqueues generation work and stops jobs)
and the generator workers (which consume it). Both import this package; neither imports
the other.

- messages: QUEUE_NAME, ACTOR_NAME, SlotRange, slot_ranges, DEFAULT_SLOTS_PER_MESSAGE
- broker: create_broker (the Dramatiq Redis broker both sides use), slot_range_message
- backlog: Backlog (the fair backlog the gateway enqueues into), FairDispatch (the workers'
  middleware that moves work from it into the Dramatiq queue)
- stop_flags: the per-job "stopped" flag workers check before every provider call
- prompts: the prompt template grammar and how slots get variable values
"""
