"""The metrics every service has (gRPC calls) and the /metrics endpoint. Each service
declares its own metrics in its package's metrics.py: a metric is counted by the one
service that owns the event.

Names are documented in docs/operations.md; keep the two in step."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

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


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics; port 0 disables it (tests run many services in one process)."""
    if port:
        start_http_server(port, addr=host)
