"""The gateway's metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STALLED_JOBS_RECOVERED = Counter(
    "synthtasks_stalled_jobs_recovered_total",
    "Unfinished jobs without progress whose work was lost and whose slot ranges the gateway enqueued again.",
)
STALLED_JOBS_WAITING = Counter(
    "synthtasks_stalled_jobs_waiting_total",
    "Unfinished jobs without progress that the gateway checked and left alone: their work still waits"
    " in the backlog or the queue, or a worker holds it.",
)
GENERATION_QUEUE_RANGES = Gauge(
    "synthtasks_generation_queue_ranges",
    "Slot ranges waiting for workers: in the fair backlog (backlog) or in the Dramatiq queue (queue).",
    ["stage"],
)
