"""OpenTelemetry traces: one trace per request, from the gateway through the registry, the
task store, the queue message and the worker's provider call.

Off by default. A process exports spans over OTLP/gRPC only when the standard variable
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
exporter reads the rest of the standard OTEL_EXPORTER_OTLP_* settings itself: headers,
certificate, timeout). Without one, the OpenTelemetry API's tracer records nothing and
costs next to nothing, so the interceptors below are always installed.

What carries the trace between processes:
- gRPC calls: every internal call carries the W3C `traceparent` in its metadata (with
  the request id, call_metadata.py); servers continue it in a server span: the
  OpenTelemetry interceptor on threaded servers, `server_span` on the asyncio gateway
  (its unary handlers run in a thread pool, which the library's asyncio interceptor
  cannot wrap). Clients open no span of their own: a server span's parent is the
  calling server's span;
- queue messages: `trace_carrier()` at enqueue puts the same W3C fields into the message,
  and the worker continues them with `continued_from(carrier)`;
- provider calls: a client span around each HTTP request (generation.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.grpc import filters, server_interceptor
from opentelemetry.trace import SpanKind, Status, StatusCode

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Health checks run every few seconds on every replica: tracing them would bury the
# requests people look for.
_NOT_HEALTH = filters.negate(filters.health_check())
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_tracer = trace.get_tracer("synthtasks")


def configure_tracing(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans over OTLP when an endpoint is configured; True if so."""
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    # Imported here: processes that trace nothing never load the SDK and the exporter.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME", service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def server_interceptors() -> list[grpc.ServerInterceptor]:
    return [server_interceptor(filter_=_NOT_HEALTH)]


@contextmanager
def server_span(method: str, metadata: Iterable[Any] | None) -> Iterator[trace.Span | None]:
    """A server span for one call of `method`, continuing the caller's trace from its
    metadata; None (no span) for health checks."""
    if method.startswith(_HEALTH_PREFIX):
        yield None
        return
    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    with _tracer.start_as_current_span(
        method.lstrip("/"),
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.method": method},
    ) as span:
        yield span


def end_server_span(span: trace.Span | None, code: grpc.StatusCode) -> None:
    """Record the call's status code on its span (an error for anything but OK)."""
    if span is None:
        return
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))


def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: str | int) -> AbstractContextManager[trace.Span]:
    """A span of this process's own work (a queue message, a provider call). While no
    tracer provider is installed, nothing at all: the API's no-op span still costs a
    context attach and three nested context managers, and a worker opens one per
    provider call on its one event loop."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return nullcontext(trace.INVALID_SPAN)
    return _tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C fields (`traceparent`, `tracestate`), for call
    metadata and queue messages; empty when nothing is being traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued_from(carrier: Mapping[str, str]) -> Iterator[None]:
    """Run the block inside the trace that `carrier` (from `trace_carrier`) names."""
    token = context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        context.detach(token)
