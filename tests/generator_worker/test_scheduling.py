"""How workers schedule provider calls (issue #11), with real worker processes, the real
gateway, task store and registry, and the fake provider over HTTP:

- one process, with default settings, keeps 1,000 provider calls in flight;
- a throttled provider's backlog does not hold the threads that another provider's job needs;
- SIGTERM drains: the calls in flight end and are stored, the rest is handed back;
- once CancelGenerationJob has returned, no request of the job reaches the provider;
- the concurrency leases of a worker killed with SIGKILL come back within seconds."""

from __future__ import annotations

import signal
import time

import redis
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.generation_queue.messages import QUEUE_NAME
from tests.jobs_harness import Generation, log_dir_for, started_workers


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {what}")
        time.sleep(0.05)


def test_one_worker_process_keeps_a_thousand_calls_in_flight(generation: Generation, suite_log, request) -> None:
    # Calls long enough that the first are still running when the last start, however
    # slowly a loaded machine ramps up.
    generation.fake.configure(latency_ms=20_000)
    project = generation.new_project()
    generation.provider(project)
    with started_workers(generation.stack, log_dir_for(suite_log, request), 1):
        job = generation.start(project, 1000)
        _wait_for(lambda: generation.fake.stats().max_in_flight == 1000, 60, "1,000 calls in flight at once")
        done = generation.wait(job.name, timeout=90)

    assert (done.state, done.counts.produced) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 1000)
    assert generation.fake.stats().max_in_flight == 1000


def test_a_throttled_providers_backlog_does_not_hold_up_another_providers_job(
    generation: Generation, suite_log, request
) -> None:
    project = generation.new_project()
    throttled = generation.provider(project, requests_per_minute=1)
    other = generation.provider(project)
    # 4 threads: the throttled job's 13 messages would fill them all if waiting held them.
    with started_workers(generation.stack, log_dir_for(suite_log, request), 1, SYNTHTASKS_WORKER_THREADS="4"):
        backlog = generation.start(project, 200, provider=throttled.name)
        _wait_for(lambda: len(generation.fake.stats().arrivals) == 1, 30, "the throttled job's one call a minute")

        small = generation.wait(generation.start(project, 5, provider=other.name).name, timeout=10)

        assert (small.state, small.counts.produced) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 5)
        waiting = generation.get(backlog.name)
        assert waiting.state == gen_pb.GENERATION_JOB_STATE_RUNNING
        assert waiting.counts.produced == 1
        assert len(generation.fake.stats().arrivals) == 6
        generation.cancel(backlog.name)


def test_sigterm_finishes_and_stores_the_calls_in_flight_and_hands_back_the_rest(
    generation: Generation, suite_log, request
) -> None:
    grace = 30
    generation.fake.configure(latency_ms=3000)
    project = generation.new_project()
    generation.provider(project, max_concurrent=64)
    log_dir = log_dir_for(suite_log, request)
    with started_workers(generation.stack, log_dir, 1, SYNTHTASKS_WORKER_SHUTDOWN_GRACE_SECONDS=str(grace)) as (
        worker,
    ):
        job = generation.start(project, 200)
        _wait_for(lambda: generation.fake.stats().in_flight == 64, 30, "64 calls in flight")

        worker.process.send_signal(signal.SIGTERM)
        told = time.monotonic()
        worker.process.wait(timeout=grace + 30)
        took = time.monotonic() - told

    assert worker.process.returncode == 0
    assert took < grace
    stats = generation.fake.stats()
    assert stats.in_flight == 0, "no call was cut off"
    stopped = generation.get(job.name)
    assert stats.completions_served >= 64
    assert stopped.counts.produced == stats.completions_served, "every call that was answered was stored"
    assert stopped.counts.produced < 200, "the slots not started were handed back, not filled"

    with started_workers(generation.stack, log_dir, 1):
        done = generation.wait(job.name, timeout=60)
    assert done.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert (done.counts.produced, done.counts.failed) == (200, 0)
    assert sorted(t.lineage.slot for t in generation.staged(done)) == list(range(200))
    assert generation.fake.stats().completions_served == 200, "nothing paid for was redone"


def test_no_request_of_a_cancelled_job_arrives_after_the_cancel_returned(
    generation: Generation, suite_log, request
) -> None:
    generation.fake.configure(latency_ms=400, latency_jitter_ms=200)
    project = generation.new_project()
    generation.provider(project)  # no limits: nothing but the handshake holds calls back
    # 2 processes x 4 threads x 16 slots: 128 calls in flight, calls starting all the time.
    with started_workers(generation.stack, log_dir_for(suite_log, request), 2, SYNTHTASKS_WORKER_THREADS="4"):
        job = generation.start(project, 1000)
        generation.wait_until(job.name, lambda j: j.counts.produced >= 150, timeout=60)

        cancelled = generation.cancel(job.name)
        returned = time.monotonic()
        _wait_for(lambda: generation.fake.stats().in_flight == 0, 30, "the calls in flight to end")
        time.sleep(1.5)  # the window in which a late request would show

    assert cancelled.state == gen_pb.GENERATION_JOB_STATE_CANCELLED
    arrivals = generation.fake.stats().arrivals
    assert sum(arrived < returned for arrived in arrivals) >= 150
    late = [round(arrived - returned, 3) for arrived in arrivals if arrived >= returned]
    assert late == []
    final = generation.get(job.name)
    assert final.counts.produced < 1000
    assert len(generation.staged(final)) == final.counts.produced


def test_the_leases_of_a_killed_worker_come_back_within_seconds(generation: Generation, suite_log, request) -> None:
    generation.fake.configure(latency_ms=20_000)
    project = generation.new_project()
    generation.provider(project, max_concurrent=4)
    log_dir = log_dir_for(suite_log, request)
    queue = redis.Redis.from_url(generation.stack.gateway_settings.redis_url)
    queue_key = f"{generation.stack.gateway_settings.redis_namespace}:{QUEUE_NAME}"
    lease_env = {"SYNTHTASKS_WORKER_LEASE_TTL_SECONDS": "2"}
    try:
        # The holder takes one message (of three) and fills the provider's 4 slots with it.
        with started_workers(
            generation.stack,
            log_dir / "holder",
            1,
            SYNTHTASKS_WORKER_THREADS="1",
            dramatiq_queue_prefetch="1",
            **lease_env,
        ) as (holder,):
            # Three messages: the last one short.
            job = generation.start(project, 2 * generation.stack.gateway_settings.slots_per_message + 8)
            _wait_for(lambda: generation.fake.stats().in_flight == 4, 30, "the holder's 4 calls")
            # The waiter takes the other two messages and waits for capacity (without
            # handing them back meanwhile).
            with started_workers(
                generation.stack, log_dir / "waiter", 1, SYNTHTASKS_WORKER_CAPACITY_WAIT_SECONDS="300", **lease_env
            ):
                _wait_for(lambda: queue.llen(queue_key) == 0, 30, "the waiter took the other messages")
                time.sleep(1.0)  # it would have been granted by now if capacity were free
                assert len(generation.fake.stats().arrivals) == 4

                holder.kill()
                killed = time.monotonic()
                _wait_for(lambda: len(generation.fake.stats().arrivals) > 4, 30, "a call of the waiter")
                waited = min(t for t in generation.fake.stats().arrivals[4:]) - killed

                assert waited < 3.0
                generation.cancel(job.name)
    finally:
        queue.close()
