"""The task store's metrics. It owns the job lifecycle: every state change of a job is
written here, so each job is counted once, whichever gateway or worker caused it."""

from __future__ import annotations

from prometheus_client import Counter

JOBS = Counter(
    "synthtasks_jobs_total",
    "Generation jobs that reached a state (created, succeeded, failed, cancelled).",
    ["state"],
)
