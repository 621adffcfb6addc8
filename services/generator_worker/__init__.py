"""Generator workers: Dramatiq actors on Redis that fill generation jobs' slots by
calling LLM providers, under limits shared by all workers.

What other services use (none of it imports the actors or the provider SDK):
- messages: QUEUE_NAME, ACTOR_NAME, SlotRange, slot_ranges, DEFAULT_SLOTS_PER_MESSAGE
- broker: create_broker, enqueue_slot_ranges
- job_signals: mark_job_stopped, is_job_stopped
- prompts: placeholders, render, PromptSyntaxError
"""
