"""The generation engine in this process (no broker), against the suite's real task
store and registry and the fake provider: what one slot range does."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator

import pytest
from google.protobuf import field_mask_pb2
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb

from services.generation_queue.broker import create_broker
from services.generation_queue.messages import SlotRange
from services.generation_queue.stop_flags import mark_job_stopped
from services.generator_worker.config import Settings
from services.generator_worker.context import WorkerContext
from services.generator_worker.generation import fill_slot_range
from services.runtime.channels import internal_channel
from tests.jobs_harness import Generation
from tests.leak_watch import new_key


@pytest.fixture
def settings(stack) -> Settings:
    return Settings(
        internal_token=stack.registry_settings.internal_token,
        registry_address=stack.registry_address,
        task_store_address=stack.task_store_address,
        redis_url=stack.gateway_settings.redis_url,
        redis_namespace=stack.gateway_settings.redis_namespace,
        backoff_max_seconds=0.5,
    )


@pytest.fixture
def job_store(stack, settings: Settings) -> Iterator[job_store_service_pb2_grpc.JobStoreServiceStub]:
    channel = internal_channel(stack.task_store_address, settings)
    yield job_store_service_pb2_grpc.JobStoreServiceStub(channel)
    channel.close()


def _create_job(job_store, project: str, provider: str, text_count: int, **fields) -> gen_pb.GenerationJob:
    """Straight into the task store: recorded but not enqueued, so only this test fills it."""
    job = gen_pb.GenerationJob(prompt="Write one sentence.", text_count=text_count, provider=provider, **fields)
    return job_store.CreateJob(
        store_pb.CreateJobRequest(parent=f"projects/{project}", generation_job=job, request_id=uuid.uuid4().hex),
        timeout=10,
    ).generation_job


def _run(settings: Settings, *steps):
    """Run coroutine factories taking the context, in order, on one fresh loop."""

    async def main():
        broker = create_broker(settings.redis_url, namespace=settings.redis_namespace)
        context = WorkerContext.create(settings, broker, draining=lambda: False)
        try:
            return [await step(context) for step in steps]
        finally:
            await context.close()
            broker.close()

    return asyncio.run(main())


def test_a_redelivered_range_only_fills_what_is_missing(generation: Generation, settings, job_store) -> None:
    provider = generation.provider(generation.new_project())
    job = _create_job(job_store, generation.new_project(), provider.name, 10)

    _run(settings, lambda c: fill_slot_range(c, SlotRange(job.name, 0, 6)))
    assert generation.fake.stats().completions_served == 6
    _run(settings, lambda c: fill_slot_range(c, SlotRange(job.name, 0, 10)))

    done = generation.get(job.name)
    assert (done.state, done.counts.produced) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 10)
    assert generation.fake.stats().completions_served == 10


def test_a_range_of_a_stopped_job_calls_no_provider(generation: Generation, settings, job_store, stack) -> None:
    import redis

    provider = generation.provider(generation.new_project())
    job = _create_job(job_store, generation.new_project(), provider.name, 5)
    client = redis.Redis.from_url(settings.redis_url)
    mark_job_stopped(client, settings.redis_namespace, job.name)
    client.close()

    _run(settings, lambda c: fill_slot_range(c, SlotRange(job.name, 0, 5)))

    assert generation.fake.stats().completions_served == 0


def test_a_worker_holding_a_rotated_key_fetches_the_new_one_and_carries_on(
    generation: Generation, settings, job_store
) -> None:
    old, rotated = new_key(), new_key()
    generation.fake.configure(api_keys={old})
    provider = generation.provider(generation.new_project(), key=old)
    job = _create_job(job_store, generation.new_project(), provider.name, 5)

    async def rotate(context: WorkerContext) -> None:
        await context.credentials.get(provider.name)  # cached: the old key
        generation.fake.configure(api_keys={rotated})
        generation.clients.providers.UpdateProvider(
            pb.UpdateProviderRequest(
                provider=pb.Provider(name=provider.name, api_key=rotated),
                update_mask=field_mask_pb2.FieldMask(paths=["api_key"]),
            ),
            timeout=10,
        )

    _run(settings, rotate, lambda c: fill_slot_range(c, SlotRange(job.name, 0, 5)))

    done = generation.get(job.name)
    assert (done.state, done.counts.produced) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 5)
    # The first wave used the cached key; one refetch and every slot went through.
    assert 1 <= generation.fake.stats().keys_seen_bad <= 5


def test_replies_of_the_wrong_shape_fail_their_slots_as_bad_responses(
    generation: Generation, settings, job_store
) -> None:
    generation.fake.configure(rate_wrong_shape=1.0)
    provider = generation.provider(generation.new_project())
    job = _create_job(job_store, generation.new_project(), provider.name, 3)

    _run(settings, lambda c: fill_slot_range(c, SlotRange(job.name, 0, 3)))

    done = generation.get(job.name)
    assert (done.state, done.counts.failed) == (gen_pb.GENERATION_JOB_STATE_FAILED, 3)
    assert done.error.reason == gen_pb.FAILURE_REASON_BAD_RESPONSE
    assert generation.fake.stats().wrong_shapes == 3


def test_rate_limiting_that_outlasts_every_attempt_fails_the_slot_as_rate_limited(
    generation: Generation, settings, job_store
) -> None:
    generation.fake.configure(rate_429=1.0, retry_after_seconds=0.01)
    provider = generation.provider(generation.new_project())
    job = _create_job(job_store, generation.new_project(), provider.name, 1)

    _run(settings.model_copy(update={"max_attempts": 3}), lambda c: fill_slot_range(c, SlotRange(job.name, 0, 1)))

    done = generation.get(job.name)
    assert done.error.reason == gen_pb.FAILURE_REASON_RATE_LIMITED
    assert "Rate limit reached" in done.error.message
    assert generation.fake.stats().injected_429s == 3


def test_a_429_with_retry_after_pauses_the_provider_for_every_call(generation: Generation, settings, job_store) -> None:
    """One call at a time, every reply 429 with Retry-After 0.4 s: the next call, of any
    slot, waits out the pause instead of being refused in its turn."""
    generation.fake.configure(rate_429=1.0, retry_after_seconds=0.4)
    provider = generation.provider(generation.new_project(), max_concurrent=1)
    job = _create_job(job_store, generation.new_project(), provider.name, 3)

    _run(settings.model_copy(update={"max_attempts": 2}), lambda c: fill_slot_range(c, SlotRange(job.name, 0, 3)))

    done = generation.get(job.name)
    assert (done.counts.failed, done.error.reason) == (3, gen_pb.FAILURE_REASON_RATE_LIMITED)
    arrivals = generation.fake.stats().arrivals
    assert len(arrivals) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.35, gaps
