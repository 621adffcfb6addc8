"""One trace per request: a job created through the gateway is one trace across the
gateway, the registry, the task store, the job's queue messages and the worker's
provider calls. The in-process services' spans are read with the SDK's in-memory
exporter; a real worker process exports its spans over OTLP to a collector the test
runs on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import redis
from dramatiq import Message
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.generation_queue.backlog import Backlog
from services.generation_queue.broker import TRACE_CONTEXT_OPTION
from services.runtime.tracing import configure_tracing
from tests.jobs_harness import log_dir_for, started_workers


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process records from now on (the global tracer provider can be set
    once per process: this is the only test module that sets it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another module set the tracer provider"
    yield exporter
    provider.shutdown()  # stops recording for the rest of the run


def _named(spans: list[ReadableSpan], method: str, kind: SpanKind) -> ReadableSpan:
    found = [span for span in spans if span.name.endswith(method) and span.kind is kind]
    assert len(found) == 1, (method, kind, [(s.name, s.kind) for s in spans])
    return found[0]


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_creating_a_job_is_one_trace_from_the_gateway_to_the_task_store_and_the_queue(generation, spans):
    project = generation.new_project()
    generation.provider(project)
    spans.clear()

    job = generation.start(project, 3)

    recorded = list(spans.get_finished_spans())
    by_id = {span.context.span_id: span for span in recorded}
    root = _named(recorded, "GenerationService/CreateGenerationJob", SpanKind.SERVER)
    trace_id = root.context.trace_id
    create = _named(recorded, "JobStoreService/CreateJob", SpanKind.SERVER)
    assert create.context.trace_id == trace_id
    # The task store's server span is a child of the gateway's.
    assert _ancestors(create, by_id) == [root]
    registry_calls = [span for span in recorded if span.kind is SpanKind.SERVER and "synthtasks.internal" in span.name]
    assert {span.context.trace_id for span in registry_calls} == {trace_id}
    assert not [span for span in recorded if "grpc.health" in span.name]

    # The job's messages carry the gateway's trace to whichever worker takes them.
    client = redis.Redis.from_url(generation.stack.gateway_settings.redis_url)
    backlog = Backlog(client, generation.stack.gateway_settings.redis_namespace)
    bodies = [*client.hvals(backlog.key), *client.hvals(f"{backlog.queue_key}.msgs")]
    messages = [Message.decode(body) for body in bodies]
    ours = [m for m in messages if m.args[0]["job"] == job.name]
    assert ours
    for message in ours:
        traceparent = message.options[TRACE_CONTEXT_OPTION]["traceparent"]
        assert traceparent.split("-")[1] == f"{trace_id:032x}"


def test_tracing_exports_only_when_an_endpoint_is_configured():
    assert configure_tracing("gateway", {}) is False
    assert configure_tracing("gateway", {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is False


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[trace_pb2.Span] = []
        self._lock = threading.Lock()

    def Export(self, request, context):
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def named(self, name: str) -> list[trace_pb2.Span]:
        with self._lock:
            return [span for span in self.spans if span.name == name]


@pytest.fixture
def collector() -> Iterator[tuple[_Collector, int]]:
    receiver = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(grace=None)


def test_the_worker_continues_the_trace_of_the_request_that_created_the_job(
    generation, spans, collector, suite_log, request
):
    receiver, port = collector
    project = generation.new_project()
    generation.provider(project)
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with started_workers(generation.stack, log_dir_for(suite_log, request), 1, **exporting):
        spans.clear()
        job = generation.start(project, 3)
        assert generation.wait(job.name).state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
        deadline = time.monotonic() + 30
        while not (receiver.named("generate_slots") and receiver.named("chat.completions")):
            assert time.monotonic() < deadline, "the worker exported no spans"
            time.sleep(0.1)

    recorded = list(spans.get_finished_spans())
    root = _named(recorded, "GenerationService/CreateGenerationJob", SpanKind.SERVER)
    trace_id = root.context.trace_id.to_bytes(16, "big")
    [message_span] = [s for s in receiver.named("generate_slots") if s.trace_id == trace_id]
    # The message's span is the gateway's request span's child, across the queue.
    assert message_span.parent_span_id == root.context.span_id.to_bytes(8, "big")
    calls = [s for s in receiver.named("chat.completions") if s.trace_id == trace_id]
    assert calls and all(call.parent_span_id == message_span.span_id for call in calls)
    # The worker's calls to the task store join the trace, in the in-process services.
    # (Other tests' workers may call the shared task store meanwhile: pick this trace's.)
    work = [
        s
        for s in recorded
        if s.name.endswith("JobStoreService/GetJobWork") and s.context.trace_id == root.context.trace_id
    ]
    assert work and all(s.parent.span_id.to_bytes(8, "big") == message_span.span_id for s in work)
