"""Fairness end to end: the real gateway, task store and registry, two real
`synthtasks-worker` processes with default settings, the fake provider over HTTP. A small
job of one project is not queued behind another project's backlog."""

from __future__ import annotations

import concurrent.futures
import time

import grpc
import pytest
import redis
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb

from services.generation_queue.backlog import Backlog
from tests.jobs_harness import TERMINAL, Generation, log_dir_for, started_workers, status_code
from tests.stack import running_stack

# Issue #11: with the provider at 1 s latency and 16 calls in flight, project A's 300
# one-text jobs take ~19 s; project B's job, submitted after them, ends within 10 s.
A_JOBS = 300
B_DEADLINE_SECONDS = 10.0
CANCEL_OUTCOMES = {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}


def unfinished_jobs(generation: Generation, project: str) -> int:
    """The project's jobs not yet ended, in one call."""
    jobs = generation.clients.generation.ListGenerationJobs(
        gen_pb.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=1000), timeout=10
    ).generation_jobs
    return sum(job.state not in TERMINAL for job in jobs)


@pytest.fixture(scope="module")
def stack(make_database, infra, redis_namespace):
    """A stack of this module's own: project A's 300 jobs exceed the default job quotas."""
    with running_stack(
        make_database=make_database,
        redis_url=infra.redis_url,
        redis_namespace=f"{redis_namespace}-fairness",
        task_store_overrides={"quota_jobs_running": 0, "quota_jobs_created_per_minute": 0},
    ) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def workers(stack, suite_log, request):
    with started_workers(stack, log_dir_for(suite_log, request), count=2) as running:
        yield running


def test_a_small_job_of_one_project_is_not_queued_behind_the_backlog_of_another(
    generation: Generation,
) -> None:
    generation.fake.configure(latency_ms=1000)
    project_a, project_b = generation.new_project(), generation.new_project()
    provider = generation.provider(project_a, max_concurrent=16)
    generation.clients.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project_b}", provider=provider.name, default=True), timeout=10
    )
    settings = generation.stack.gateway_settings
    client = redis.Redis.from_url(settings.redis_url)
    backlog = Backlog(client, settings.redis_namespace)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        a_jobs = list(pool.map(lambda _: generation.start(project_a, 1).name, range(A_JOBS)))

    unfinished_ahead_of_b = unfinished_jobs(generation, project_a)
    b_submitted = time.monotonic()
    b_job = generation.wait(generation.start(project_b, 1).name, timeout=120)
    b_seconds = time.monotonic() - b_submitted
    a_unfinished = [name for name in a_jobs if generation.get(name).state not in TERMINAL]

    assert b_job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED and b_job.counts.produced == 1
    # The control: B really had a backlog of A's to overtake, still there when B ended.
    # First in, first out, B would have waited for all of it: more than 10 s of work at
    # 16 calls/s besides the 16 calls in flight.
    assert unfinished_ahead_of_b > (B_DEADLINE_SECONDS + 1) * 16
    assert a_unfinished
    assert b_seconds <= B_DEADLINE_SECONDS, f"B's job took {b_seconds:.1f} s with {len(a_unfinished)} of A's unfinished"

    # A's jobs cancelled (those that ended meanwhile refuse) end, and leave nothing waiting
    # in the backlog (test_backlog.py shows the drop itself).
    for name in a_unfinished:
        assert status_code(lambda name=name: generation.cancel(name)) in CANCEL_OUTCOMES
    assert backlog.size() == 0
    for name in a_unfinished:
        assert generation.wait(name).state in TERMINAL
    client.close()
