"""Streams a client leaves are counted and logged as CANCELLED, not OK."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY
from synthtasks.v1 import generation_service_pb2 as generation_pb2

from tests.task_store.builders import append, create_job, text

_WATCH = "/synthtasks.v1.GenerationService/WatchGenerationJob"


def _count(code: str) -> float:
    value = REGISTRY.get_sample_value(
        "synthtasks_grpc_requests_total", {"service": "task-store", "method": _WATCH, "code": code}
    )
    return value or 0.0


def _wait_until(condition, *, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_a_watch_the_client_cancels_is_counted_as_cancelled(generation, jobs, project):
    cancelled_before, ok_before = _count("CANCELLED"), _count("OK")
    job = create_job(jobs, project, text_count=2)
    stream = generation.WatchGenerationJob(generation_pb2.WatchGenerationJobRequest(name=job.name), timeout=30)
    next(stream)

    stream.cancel()

    _wait_until(lambda: _count("CANCELLED") == cancelled_before + 1)
    # The control: a watch that runs to the job's end is counted OK.
    finished = generation.WatchGenerationJob(generation_pb2.WatchGenerationJobRequest(name=job.name), timeout=30)
    next(finished)
    append(jobs, job.name, text(0, "one"), text(1, "two"))
    list(finished)
    _wait_until(lambda: _count("OK") == ok_before + 1)
    assert _count("CANCELLED") == cancelled_before + 1
