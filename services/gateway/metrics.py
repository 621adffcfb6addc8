"""The gateway's metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STALLED_JOBS_RECOVERED = Counter(
    "synthtasks_stalled_jobs_recovered_total",
    "Unfinished jobs without progress whose slot ranges the gateway enqueued again.",
)
GENERATION_QUEUE_RANGES = Gauge(
    "synthtasks_generation_queue_ranges",
    "Slot ranges waiting for workers: in the fair backlog (backlog) or in the Dramatiq queue (queue).",
    ["stage"],
)
