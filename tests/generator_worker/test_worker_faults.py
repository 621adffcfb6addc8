"""Two worker processes share the provider's limits, and a worker killed with SIGKILL
mid-job loses nothing: its messages come back and the job ends with exactly N texts."""

from __future__ import annotations

import time

import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb

from tests.jobs_harness import Generation, log_dir_for, started_workers


@pytest.fixture(scope="module")
def workers(stack, suite_log, request):
    # Two messages in hand per process (instead of 2 x threads), so both processes get
    # some of a 10-message job and the one killed surely holds messages.
    with started_workers(stack, log_dir_for(suite_log, request), count=2, dramatiq_queue_prefetch="2") as running:
        yield running


def test_two_workers_together_stay_under_the_providers_requests_per_minute(generation: Generation, workers) -> None:
    limit = 40
    generation.fake.configure(rpm_limit=limit, latency_ms=20)
    project = generation.new_project()
    generation.provider(project, requests_per_minute=limit)
    job = generation.start(project, limit + 25)

    generation.wait_until(job.name, lambda j: j.counts.produced >= limit, timeout=20)
    time.sleep(2.0)  # the rest of the job must now wait for the minute to pass
    stats = generation.fake.stats()
    waiting = generation.get(job.name)
    generation.cancel(job.name)

    assert stats.limit_429s == 0
    assert len(stats.arrivals) == limit == stats.requests_per_window(60)
    assert waiting.state == gen_pb.GENERATION_JOB_STATE_RUNNING
    assert (waiting.counts.produced, waiting.counts.failed) == (limit, 0)


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(generation: Generation, workers) -> None:
    generation.fake.configure(latency_ms=150)
    project = generation.new_project()
    generation.provider(project, max_concurrent=8)
    job = generation.start(project, 160)
    generation.wait_until(job.name, lambda j: j.counts.produced >= 30, timeout=20)

    workers[0].kill()
    done = generation.wait(job.name, timeout=60)

    assert done.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert (done.counts.produced, done.counts.failed, done.counts.duplicates) == (160, 0, 0)
    texts = generation.staged(done)
    assert sorted(t.lineage.slot for t in texts) == list(range(160))
    assert len({t.text for t in texts}) == 160
