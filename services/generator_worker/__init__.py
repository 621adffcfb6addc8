"""Generator workers: Dramatiq actors on Redis that fill generation jobs' slots by
calling LLM providers, under limits shared by all workers. The queue contract they
consume (message schema, broker, stop flags, prompt grammar) lives in
services/generation_queue, which the gateway imports too."""
