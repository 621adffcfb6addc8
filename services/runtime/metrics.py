"""Prometheus metrics of every service, served on their own HTTP port.

Names are documented in docs/operations.md; keep the two in step."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_REQUESTS = Counter(
    "synthtasks_grpc_requests_total",
    "gRPC calls handled, by service, method and status code.",
    ["service", "method", "code"],
)
GRPC_REQUEST_SECONDS = Histogram(
    "synthtasks_grpc_request_seconds",
    "Time to handle a gRPC call (for streams: until the stream ends).",
    ["service", "method"],
)
GENERATION_TEXTS = Counter(
    "synthtasks_generation_texts_total",
    "Slots finished by workers, by outcome (produced, duplicate, failed).",
    ["outcome"],
)
PROVIDER_REQUESTS = Counter(
    "synthtasks_provider_requests_total",
    "Calls to LLM providers, by provider kind and outcome.",
    ["provider_kind", "outcome"],
)
PROVIDER_REQUEST_SECONDS = Histogram(
    "synthtasks_provider_request_seconds",
    "Latency of LLM provider calls.",
    ["provider_kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
RATE_LIMITER_WAIT_SECONDS = Histogram(
    "synthtasks_rate_limiter_wait_seconds",
    "Time a provider call waited for capacity under the provider's shared limits.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
)
JOBS = Counter(
    "synthtasks_jobs_total",
    "Generation jobs that reached a state (created, succeeded, failed, cancelled).",
    ["state"],
)

STALLED_JOBS_RECOVERED = Counter(
    "synthtasks_stalled_jobs_recovered_total",
    "Unfinished jobs without progress whose slot ranges the gateway enqueued again.",
)

GENERATION_QUEUE_RANGES = Gauge(
    "synthtasks_generation_queue_ranges",
    "Slot ranges waiting for workers: in the fair backlog (backlog) or in the Dramatiq queue (queue).",
    ["stage"],
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics; port 0 disables it (tests run many services in one process)."""
    if port:
        start_http_server(port, addr=host)
