"""Limits that more than one service enforces: the gateway checks them to answer early
and the task store checks them again because it writes. One value each, so the two
can never disagree (the gateway once allowed 1,000,000 texts a job, the task store
100,000)."""

from __future__ import annotations

# Texts one job may ask for; the gateway's configured maximum must not exceed it.
MAX_TEXT_COUNT = 100_000
MAX_PROMPT_CHARS = 100_000
MAX_OUTPUT_TOKENS = 100_000
MAX_MODEL_CHARS = 128
MAX_REQUEST_ID_CHARS = 128
