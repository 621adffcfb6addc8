"""The gateway's metrics."""

from __future__ import annotations

from prometheus_client import Counter

STALLED_JOBS_RECOVERED = Counter(
    "synthtasks_stalled_jobs_recovered_total",
    "Unfinished jobs without progress whose slot ranges the gateway enqueued again.",
)
