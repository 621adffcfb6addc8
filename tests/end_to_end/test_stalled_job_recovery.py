"""Jobs whose queue messages were lost, or never sent, still end with exactly N texts:
the gateway's sweeper enqueues them again; healthy slow jobs are left alone.

A stack of its own (databases, Redis namespace, fake provider) with the sweeper tuned to
seconds, so that it sees only this module's jobs."""

from __future__ import annotations

import uuid

import pytest
import redis
from prometheus_client import REGISTRY
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.runtime.channels import internal_channel
from tests.jobs_harness import Generation, log_dir_for, started_workers
from tests.stack import running_stack

STALLED_JOB_SECONDS = 1.5


@pytest.fixture(scope="module")
def recovering_stack(make_database, infra, redis_namespace):
    with running_stack(
        make_database=make_database,
        redis_url=infra.redis_url,
        redis_namespace=f"{redis_namespace}-recovery",
        stalled_job_seconds=STALLED_JOB_SECONDS,
        stalled_job_check_seconds=0.25,
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def generation(recovering_stack) -> Generation:
    return Generation(recovering_stack, recovering_stack.fake_llm, recovering_stack.admin())


@pytest.fixture(scope="module")
def workers(recovering_stack, suite_log, request):
    """Started by each test when it wants them: some jobs must first lose their messages."""
    return lambda: started_workers(recovering_stack, log_dir_for(suite_log, request), 1)


def recovered_so_far() -> float:
    return REGISTRY.get_sample_value("synthtasks_stalled_jobs_recovered_total") or 0.0


def assert_exactly_n_texts(generation: Generation, job: gen_pb.GenerationJob, n: int) -> None:
    done = generation.wait(job.name, timeout=60)
    assert done.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED, done
    assert done.counts.produced == n
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


def test_a_slow_job_that_makes_progress_is_left_alone(generation, workers):
    project = generation.new_project()
    # Two calls at a time of 200 ms each: 30 texts take ~3 s, twice the stall threshold,
    # with a result every ~0.1 s.
    generation.provider(project, max_concurrent=2)
    generation.fake.configure(latency_ms=200)
    with workers():
        before = recovered_so_far()
        job = generation.start(project, 30)
        assert_exactly_n_texts(generation, job, 30)
        assert recovered_so_far() == before
    generation.fake.configure(latency_ms=0)
