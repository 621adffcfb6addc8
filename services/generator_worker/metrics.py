"""The workers' metrics: counted in the worker processes, served by their parent
(prometheus_client's multiprocess mode, see __main__)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
