"""Open streams never starve other callers: 200 Watch streams from one token leave
another project's calls and the health check fast; streams past a token's or a
project's limit are refused with a QuotaFailure; a stream ends after the maximum
duration, and a Watch resumes when called again."""

from __future__ import annotations

import time

import grpc
import pytest
from prometheus_client import REGISTRY
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import task_service_pb2_grpc

from tests.gateway.tenant_harness import (
    P99_BOUND_SECONDS,
    default_provider,
    fill,
    health_check,
    new_project,
    own_stack,
    p99,
    project_token,
    start_job,
    timed,
)
from tests.rich_status import error_info_reason, quota_failure
from tests.stack import bearer

OPEN_STREAMS = "synthtasks_gateway_open_streams"


def wait_for_open_streams(count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while REGISTRY.get_sample_value(OPEN_STREAMS) != count:
        assert time.monotonic() < deadline, f"{REGISTRY.get_sample_value(OPEN_STREAMS)} streams open, not {count}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def roomy_stack(make_database, infra, redis_namespace):
    """Limits high enough for one token to hold 200 streams through to the task store."""
    with own_stack(
        make_database,
        infra,
        redis_namespace,
        max_streams=256,
        max_streams_per_project=256,
        max_streams_per_token=256,
        task_store_overrides={"max_workers": 240, "max_streams": 216},
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def tight_stack(make_database, infra, redis_namespace):
    with own_stack(
        make_database,
        infra,
        redis_namespace,
        max_streams=8,
        max_streams_per_project=5,
        max_streams_per_token=3,
        max_stream_seconds=2,
    ) as stack:
        yield stack


def open_watches(clients, job_name: str, count: int) -> list:
    """`count` Watch streams, each past its first snapshot (so open end to end)."""
    calls = []
    for _ in range(count):
        call = clients.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job_name), timeout=120)
        calls.append(call)
    for call in calls:
        assert next(call).generation_job.name == job_name
    return calls


def test_200_open_watch_streams_of_one_token_leave_other_projects_and_health_checks_fast(roomy_stack):
    busy_project, other_project = new_project(), new_project()
    default_provider(roomy_stack, busy_project)
    busy = roomy_stack.clients(project_token(roomy_stack, busy_project)[0])
    other = roomy_stack.clients(project_token(roomy_stack, other_project)[0])
    job = start_job(busy, busy_project)  # no worker runs: it stays queued, its watchers wait

    streams = open_watches(busy, job.name, 200)
    try:
        wait_for_open_streams(200)
        list_latencies = [
            timed(
                lambda: other.tasks.ListStagedTexts(
                    task_pb.ListStagedTextsRequest(parent=f"projects/{other_project}"), timeout=5
                )
            )
            for _ in range(20)
        ]
        check = health_check(roomy_stack)
        health_latencies = [timed(check) for _ in range(20)]
        # The streams were open all along: every one still delivers.
        assert REGISTRY.get_sample_value(OPEN_STREAMS) == 200
    finally:
        for call in streams:
            call.cancel()
    wait_for_open_streams(0)
    assert p99(list_latencies) < P99_BOUND_SECONDS, list_latencies
    assert p99(health_latencies) < P99_BOUND_SECONDS, health_latencies


def refusal_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        next(call)
    return raised.value


def test_streams_past_a_tokens_or_a_projects_limit_are_refused_with_a_quota_failure(tight_stack):
    project = new_project()
    default_provider(tight_stack, project)
    first_secret, first_name = project_token(tight_stack, project)
    first, second = tight_stack.clients(first_secret), tight_stack.clients(project_token(tight_stack, project)[0])
    job = start_job(first, project)

    held = open_watches(first, job.name, 3)
    try:
        error = refusal_of(first.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name)))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info_reason(error) == "TOO_MANY_STREAMS"
        violations, retry = quota_failure(error)
        assert [subject for subject, _ in violations] == [first_name]
        assert "streams-per-token" in violations[0][1]
        assert retry is None  # closing a stream frees a slot, not waiting

        held += open_watches(second, job.name, 2)  # the project's 5th stream
        error = refusal_of(second.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name)))
        assert quota_failure(error)[0][0][0] == f"projects/{project}"

        held.pop().cancel()
        wait_for_open_streams(4)
        held += open_watches(second, job.name, 1)  # the freed slot is usable again
    finally:
        for call in held:
            call.cancel()
    wait_for_open_streams(0)


def test_a_watch_ends_cleanly_at_the_maximum_duration_and_resumes_when_called_again(tight_stack):
    project = new_project()
    default_provider(tight_stack, project)
    clients = tight_stack.clients(project_token(tight_stack, project)[0])
    job = start_job(clients, project)

    started = time.monotonic()
    events = list(clients.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name), timeout=30))
    lasted = time.monotonic() - started
    # Ended with OK (list() raised nothing) while the job is still queued, after the 2 s limit.
    assert events and events[-1].generation_job.state == gen_pb.GENERATION_JOB_STATE_QUEUED
    assert lasted >= 2
    resumed = clients.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name), timeout=30)
    assert next(resumed).generation_job.name == job.name
    resumed.cancel()


def task_store_exports_ended() -> float:
    """ExportStagedTexts calls the task store has finished, however they ended."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "synthtasks_grpc_requests"
        for sample in metric.samples
        if sample.name == "synthtasks_grpc_requests_total"
        and sample.labels["service"] == "task-store"
        and sample.labels["method"].endswith("/ExportStagedTexts")
    )


def test_an_export_still_running_at_the_maximum_duration_fails_rather_than_end_cut_short(tight_stack):
    project = new_project()
    fill(tight_stack, project, 3000, text_bytes=2000)  # 6 MB: more than flow control holds in flight
    # A client whose receive window stays at HTTP/2's 64 KiB (no BDP probing): when it
    # stops reading, the export stops at once instead of filling a grown window first.
    channel = grpc.intercept_channel(
        grpc.insecure_channel(tight_stack.gateway_address, options=[("grpc.http2.bdp_probe", 0)]),
        bearer(project_token(tight_stack, project)[0]),
    )
    tasks = task_service_pb2_grpc.TaskServiceStub(channel)
    ended_before = task_store_exports_ended()
    export = tasks.ExportStagedTexts(task_pb.ExportStagedTextsRequest(parent=f"projects/{project}"), timeout=60)
    received = len(next(export).data)
    # The client stops reading; after 2 s the gateway releases the task store's side.
    deadline = time.monotonic() + 30
    while task_store_exports_ended() == ended_before:
        assert time.monotonic() < deadline, "the export's task-store side was never released"
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as raised:
        for chunk in export:
            received += len(chunk.data)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert received < 3000 * 2000
    wait_for_open_streams(0)
    channel.close()
