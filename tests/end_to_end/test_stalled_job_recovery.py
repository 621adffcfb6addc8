"""Jobs whose queue work was lost (Redis restarted without persistence, messages
dead-lettered, a gateway died before enqueueing) still end with exactly N texts: the
gateway's sweeper enqueues them again. Jobs that merely wait (in the fair backlog, behind
slow provider calls) are left alone, and are reported `stalled` meanwhile.

Two stacks of their own (databases, Redis namespace, fake provider): one with the
sweeper tuned to seconds, for the mechanism, and one with the default settings, where
time is moved in the database instead of waited for."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import psycopg
import pytest
import redis
from prometheus_client import REGISTRY
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.gateway.config import Settings as GatewaySettings
from services.generation_queue.backlog import backlog_key
from services.runtime.channels import internal_channel
from tests.jobs_harness import Generation, log_dir_for, started_workers
from tests.stack import Stack, running_stack

STALLED_JOB_SECONDS = 1.5
SWEEP_SECONDS = 0.25


@pytest.fixture(scope="module")
def recovering_stack(make_database, infra, redis_namespace):
    with running_stack(
        make_database=make_database,
        redis_url=infra.redis_url,
        redis_namespace=f"{redis_namespace}-recovery",
        stalled_job_seconds=STALLED_JOB_SECONDS,
        stalled_job_check_seconds=SWEEP_SECONDS,
        # Small ranges, so that jobs of a few dozen texts have work in several places
        # (held by a worker, in the queue, in the backlog) for the tests to lose.
        slots_per_message=16,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def generation(recovering_stack) -> Generation:
    return Generation(recovering_stack, recovering_stack.fake_llm, recovering_stack.admin())


@pytest.fixture(scope="module")
def workers(recovering_stack, suite_log, request):
    """Started by each test when it wants them: some jobs must first lose their messages."""
    return lambda **env: started_workers(recovering_stack, log_dir_for(suite_log, request), 1, **env)


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def recovered_so_far() -> float:
    return counter("synthtasks_stalled_jobs_recovered_total")


def left_waiting_so_far() -> float:
    return counter("synthtasks_stalled_jobs_waiting_total")


def lose_the_queue(stack: Stack) -> int:
    """What a Redis restart without persistence does to this stack: every key of its
    namespace (backlog, queues, workers' acks and heartbeats, granted calls) is gone.
    Returns how many keys there were."""
    client = redis.Redis.from_url(stack.gateway_settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{stack.gateway_settings.redis_namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def assert_exactly_n_texts(generation: Generation, job: gen_pb.GenerationJob, n: int, timeout: float = 60) -> None:
    done = generation.wait(job.name, timeout=timeout)
    assert done.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED, done
    assert done.counts.produced == n
    assert not done.stalled
    texts = generation.staged(done)
    assert len(texts) == n
    assert sorted(text.lineage.slot for text in texts) == list(range(n)), "every slot once, none twice"


def test_a_job_whose_messages_were_lost_is_enqueued_again_and_completes(generation, recovering_stack, workers):
    project = generation.new_project()
    generation.provider(project)
    job = generation.start(project, 40)
    client = redis.Redis.from_url(recovering_stack.gateway_settings.redis_url)
    namespace = recovering_stack.gateway_settings.redis_namespace
    lost = list(client.scan_iter(match=f"{namespace}:generation*"))
    assert lost, "the job's messages should be in the queue"
    client.delete(*lost)
    client.close()
    before = recovered_so_far()

    with workers():
        assert_exactly_n_texts(generation, job, 40)
    assert recovered_so_far() > before


def test_a_running_job_whose_queue_is_lost_ends_with_exactly_n_texts(generation, recovering_stack, workers):
    """Redis loses everything while workers are at the job: the messages they hold run
    to their end, the rest is enqueued again once the job stops making progress."""
    project = generation.new_project()
    # Two calls at a time of 100 ms: 96 texts (6 ranges) take ~5 s. One thread and one
    # message ready: the worker holds two ranges, the queue one, the backlog the rest,
    # so there is work to lose.
    generation.provider(project, max_concurrent=2)
    generation.fake.configure(latency_ms=100)
    try:
        with workers(SYNTHTASKS_WORKER_THREADS="1", SYNTHTASKS_WORKER_QUEUE_READY_MESSAGES="1"):
            job = generation.start(project, 96)
            generation.wait_until(
                job.name, lambda j: j.state == gen_pb.GENERATION_JOB_STATE_RUNNING and j.counts.produced > 0
            )
            before = recovered_so_far()
            assert lose_the_queue(recovering_stack) > 0
            assert_exactly_n_texts(generation, job, 96)
            assert recovered_so_far() > before
    finally:
        generation.fake.configure(latency_ms=0)


def test_a_job_recorded_but_never_enqueued_completes(generation, recovering_stack, workers):
    """What is left when the gateway dies between recording a job and enqueueing it."""
    project = generation.new_project()
    provider = generation.provider(project)
    channel = internal_channel(recovering_stack.task_store_address, recovering_stack.gateway_settings)
    recorded = job_store_service_pb2_grpc.JobStoreServiceStub(channel).CreateJob(
        store_pb.CreateJobRequest(
            parent=f"projects/{project}",
            generation_job=gen_pb.GenerationJob(
                prompt="Write one sentence.", text_count=20, provider=provider.name, model=provider.model
            ),
            request_id=uuid.uuid4().hex,
        ),
        timeout=10,
    )
    channel.close()
    assert not recorded.enqueued

    with workers():
        assert_exactly_n_texts(generation, recorded.generation_job, 20)


def test_a_job_waiting_in_the_backlog_longer_than_the_threshold_is_left_alone(generation, recovering_stack, workers):
    """No worker runs, so the job's ranges wait in the fair backlog far longer than the
    stall threshold: it is reported stalled, checked at every sweep, and never enqueued
    again - no duplicate range, no extra provider call."""
    project = generation.new_project()
    generation.provider(project)
    generation.fake.reset_stats()
    recovered_before = recovered_so_far()
    waiting_before = left_waiting_so_far()
    job = generation.start(project, 40)  # ranges of 16, 16 and 8 slots
    client = redis.Redis.from_url(recovering_stack.gateway_settings.redis_url)
    ranges = f"{backlog_key(recovering_stack.gateway_settings.redis_namespace)}.ranges:{job.name}"
    try:
        assert client.llen(ranges) == 3
        deadline = time.monotonic() + 60
        # Several sweeps looked at it (each claim waits out the threshold again).
        while left_waiting_so_far() < waiting_before + 3:
            assert time.monotonic() < deadline, "the sweeper never looked at the waiting job"
            time.sleep(SWEEP_SECONDS)
        assert generation.get(job.name).stalled
        assert client.llen(ranges) == 3, "no range added twice"
        assert recovered_so_far() == recovered_before
    finally:
        client.close()

    with workers():
        assert_exactly_n_texts(generation, job, 40)
    assert generation.fake.stats().completions_served == 40, "one provider call per text"
    assert recovered_so_far() == recovered_before


def test_a_slow_job_that_makes_progress_is_left_alone(generation, workers):
    project = generation.new_project()
    # Two calls at a time of 200 ms each: 30 texts take ~3 s, twice the stall threshold,
    # with a result every ~0.1 s.
    generation.provider(project, max_concurrent=2)
    generation.fake.configure(latency_ms=200)
    try:
        with workers():
            before = recovered_so_far()
            job = generation.start(project, 30)
            assert_exactly_n_texts(generation, job, 30)
            assert recovered_so_far() == before
    finally:
        generation.fake.configure(latency_ms=0)


def test_the_default_settings_bring_lost_work_back_within_two_minutes():
    """Lost work waits for the threshold, then at most one check interval."""
    fields = GatewaySettings.model_fields
    threshold = fields["stalled_job_seconds"].default
    interval = fields["stalled_job_check_seconds"].default
    assert threshold + interval <= 120


def test_with_the_default_settings_a_lost_job_is_recovered_at_the_next_sweep(
    make_database, infra, redis_namespace, suite_log, request
):
    """The default threshold and interval, with the minute of silence moved into the
    database rather than waited for: the job lost its queue, its last progress is older
    than the threshold, and the next sweep (at most the default interval later) brings it
    back."""
    defaults = GatewaySettings.model_fields
    threshold = defaults["stalled_job_seconds"].default
    with running_stack(
        make_database=make_database, redis_url=infra.redis_url, redis_namespace=f"{redis_namespace}-defaults"
    ) as stack:
        assert stack.gateway_settings.stalled_job_seconds == threshold
        generation = Generation(stack, stack.fake_llm, stack.admin())
        project = generation.new_project()
        generation.provider(project)
        job = generation.start(project, 40)
        assert not generation.get(job.name).stalled
        assert lose_the_queue(stack) > 0
        with psycopg.connect(stack.task_store_settings.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE generation_jobs SET update_time = update_time - %s WHERE id = %s",
                (timedelta(seconds=threshold + 1), job.name.rsplit("/", 1)[1]),
            )
        assert generation.get(job.name).stalled
        backdated = time.monotonic()
        with started_workers(stack, log_dir_for(suite_log, request), 1):
            # A deadline, not a measure: the sweep comes within the default interval.
            assert_exactly_n_texts(generation, job, 40, timeout=defaults["stalled_job_check_seconds"].default + 60)
        print(f"recovered {threshold + 1 + time.monotonic() - backdated:.1f} s after the last progress")
