"""The shared limiter holds provider limits across OS processes, waits instead of
failing, and frees the capacity of a process that was killed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from prometheus_client import REGISTRY

from services.generator_worker.limiter import LimiterAborted, Limits, SharedLimiter
from tests.infrastructure import Infrastructure

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def scope() -> str:
    return f"providers/limiter-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sync_redis(infra: Infrastructure) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(infra.redis_url)
    yield client
    client.close()


def _hammer(infra: Infrastructure, namespace: str, scope: str, mode: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.generator_worker.limiter_hammer",
            mode,
            "--redis",
            infra.redis_url,
            "--namespace",
            namespace,
            "--scope",
            scope,
            *options,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen, timeout: float = 30) -> dict:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def waited_in_total() -> float:
    """Seconds callers have waited for capacity in this process so far."""
    return REGISTRY.get_sample_value("synthtasks_rate_limiter_wait_seconds_sum") or 0.0


def _run(coroutine_factory, infra: Infrastructure, namespace: str, **limiter_options):
    async def main():
        client = redis.asyncio.Redis.from_url(infra.redis_url)
        limiter = SharedLimiter(client, namespace, **limiter_options)
        try:
            return await coroutine_factory(limiter, client)
        finally:
            await limiter.close()
            await client.aclose()

    return asyncio.run(main())


def test_concurrency_never_exceeds_the_limit_across_two_processes(
    infra: Infrastructure, redis_namespace: str, scope: str, sync_redis: redis.Redis
) -> None:
    hammers = [
        _hammer(infra, redis_namespace, scope, "concurrency", "--limit", "5", "--tasks", "20", "--seconds", "2")
        for _ in range(2)
    ]
    granted = [_result(h)["granted"] for h in hammers]

    # The probe counts grants beyond the limit; both processes got a share (positive
    # control). Throughput is measured by bench/limiter_bench.py, not asserted here.
    assert int(sync_redis.get(f"{redis_namespace}:probe:over") or 0) == 0
    assert min(granted) > 0


def test_requests_per_window_are_exact_across_two_processes(
    infra: Infrastructure, redis_namespace: str, scope: str, sync_redis: redis.Redis
) -> None:
    # 10 requests per 1 s window, for 3.5 s: windows open at ~0, 1, 2 and 3 s.
    options = ("--limit", "10", "--window", "1", "--margin", "0", "--tasks", "8", "--seconds", "3.5")
    hammers = [_hammer(infra, redis_namespace, scope, "rpm", *options) for _ in range(2)]
    total = sum(_result(h)["granted"] for h in hammers)

    grants = sorted(float(g) for g in sync_redis.lrange(f"{redis_namespace}:probe:grants", 0, -1))
    assert len(grants) == total
    most_in_a_window = max(sum(1 for other in grants if start <= other < start + 1000) for start in grants)
    assert most_in_a_window == 10  # the budget is used, not just respected


def test_a_caller_over_the_limit_waits_for_capacity_instead_of_failing(
    infra: Infrastructure, redis_namespace: str, scope: str
) -> None:
    waits_before = waited_in_total()

    async def scenario(limiter: SharedLimiter, client) -> float:
        limits = Limits(max_concurrent=1)
        first = await limiter.acquire(scope, limits)

        async def release_later() -> None:
            await asyncio.sleep(0.3)
            limiter.release(first)

        releasing = asyncio.create_task(release_later())
        started = time.monotonic()
        second = await limiter.acquire(scope, limits)
        waited = time.monotonic() - started
        limiter.release(second)
        await releasing
        return waited

    waited = _run(scenario, infra, redis_namespace)

    assert waited >= 0.25, "granted before the holder released"
    assert waited_in_total() - waits_before >= 0.25


def test_a_rate_limited_caller_sleeps_until_the_window_frees(
    infra: Infrastructure, redis_namespace: str, scope: str
) -> None:
    async def scenario(limiter: SharedLimiter, client) -> float:
        limits = Limits(requests_per_minute=2)
        for _ in range(2):
            limiter.release(await limiter.acquire(scope, limits))
        started = time.monotonic()
        limiter.release(await limiter.acquire(scope, limits))
        return time.monotonic() - started

    waited = _run(scenario, infra, redis_namespace, window_seconds=0.5, window_margin_seconds=0)

    assert waited >= 0.4, "granted before the window freed"


def test_a_pause_holds_back_every_process_until_it_ends(
    infra: Infrastructure, redis_namespace: str, scope: str
) -> None:
    async def scenario(limiter: SharedLimiter, client) -> tuple[float, float]:
        # Another process's limiter, as another worker would see the pause.
        other = SharedLimiter(client, redis_namespace)
        await limiter.pause(scope, 0.6)
        await limiter.pause(scope, 0.1)  # a shorter pause does not cut the running one
        started = time.monotonic()
        lease = await other.acquire(scope, Limits())
        waited_other = time.monotonic() - started
        other.release(lease)
        await other.close()
        lease = await limiter.acquire(scope, Limits())
        limiter.release(lease)
        return waited_other, time.monotonic() - started

    waited_other, waited_after = _run(scenario, infra, redis_namespace)

    # The shorter pause did not cut the longer one short; once it has run, both go on.
    assert waited_other >= 0.5
    assert waited_after >= waited_other


def test_the_leases_of_a_killed_holder_expire(infra: Infrastructure, redis_namespace: str, scope: str) -> None:
    holder = _hammer(infra, redis_namespace, scope, "hold", "--limit", "1", "--lease-ttl", "1")
    try:
        assert holder.stdout.readline().strip() == "HELD"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            holder.kill()

    async def scenario(limiter: SharedLimiter, client) -> None:
        # Without expiry the dead holder's lease would block this for ever; the
        # timeout only says that it was granted at all.
        limiter.release(await asyncio.wait_for(limiter.acquire(scope, Limits(max_concurrent=1)), 30))

    _run(scenario, infra, redis_namespace)


def test_live_holders_renew_their_leases(infra: Infrastructure, redis_namespace: str, scope: str) -> None:
    async def scenario(limiter: SharedLimiter, client) -> bool:
        limits = Limits(max_concurrent=1)
        held = await limiter.acquire(scope, limits)
        other = SharedLimiter(client, redis_namespace, lease_ttl_seconds=0.6)
        try:
            await asyncio.wait_for(other.acquire(scope, limits), 1.5)  # 2.5 ttl: renewed all along
            return False
        except TimeoutError:
            return True
        finally:
            await other.close()
            limiter.release(held)

    assert _run(scenario, infra, redis_namespace, lease_ttl_seconds=0.6)


def test_an_abort_key_stops_a_waiting_caller_and_nothing_is_granted(
    infra: Infrastructure, redis_namespace: str, scope: str
) -> None:
    abort_key = f"{redis_namespace}:abort-{uuid.uuid4().hex[:6]}"

    async def scenario(limiter: SharedLimiter, client: redis.asyncio.Redis) -> None:
        limits = Limits(max_concurrent=1)
        held = await limiter.acquire(scope, limits, abort_key=abort_key)
        waiter = asyncio.create_task(limiter.acquire(scope, limits, abort_key=abort_key))
        await asyncio.sleep(0.1)
        await client.set(abort_key, "cancelled")
        with pytest.raises(LimiterAborted):
            await asyncio.wait_for(waiter, 2)
        limiter.release(held)
        with pytest.raises(LimiterAborted):
            await limiter.acquire(scope, limits, abort_key=abort_key)

    _run(scenario, infra, redis_namespace)


def test_tokens_are_reconciled_with_the_reported_usage(infra: Infrastructure, redis_namespace: str, scope: str) -> None:
    async def scenario(limiter: SharedLimiter, client) -> None:
        limits = Limits(tokens_per_minute=1000)
        first = await limiter.acquire(scope, limits, tokens=600)
        # 600 of 1000 taken: another 600 must wait ~12 s for the refill...
        blocked = asyncio.create_task(limiter.acquire(scope, limits, tokens=600))
        await asyncio.sleep(0.2)
        assert not blocked.done()
        # ...until the first call reports that it used only 100.
        limiter.release(first, tokens_used=100)
        # Well under the ~12 s refill: only the reconciliation can grant it in time.
        second = await asyncio.wait_for(blocked, 6)
        limiter.release(second, tokens_used=600)

    _run(scenario, infra, redis_namespace)


def test_waiting_callers_are_served_in_arrival_order_and_a_cancelled_one_leaks_nothing(
    infra: Infrastructure, redis_namespace: str, scope: str, sync_redis: redis.Redis
) -> None:
    async def scenario(limiter: SharedLimiter, client) -> list[int]:
        limits = Limits(max_concurrent=1)
        held = await limiter.acquire(scope, limits)
        waiters = []
        for _ in range(8):
            waiters.append(asyncio.create_task(limiter.acquire(scope, limits)))
            await asyncio.sleep(0)  # each joins the queue before the next is created
        waiters[2].cancel()
        served = []
        pending = {task for index, task in enumerate(waiters) if index != 2}
        while pending:
            limiter.release(held)
            done, pending = await asyncio.wait(pending, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1, "one release must grant exactly one waiter"
            task = done.pop()
            served.append(waiters.index(task))
            held = task.result()
        limiter.release(held)
        await limiter.close()
        return served

    served = _run(scenario, infra, redis_namespace)

    assert served == [0, 1, 3, 4, 5, 6, 7]
    concurrency_key = f"{redis_namespace}:limits:{scope}:concurrency"
    assert sync_redis.zcard(concurrency_key) == 0, "a lease outlived its holder"


def test_one_jobs_abort_key_refuses_only_its_callers_in_a_burst(
    infra: Infrastructure, redis_namespace: str, scope: str
) -> None:
    stopped_job = f"{redis_namespace}:abort-{uuid.uuid4().hex[:6]}"
    running_job = f"{redis_namespace}:abort-{uuid.uuid4().hex[:6]}"

    async def scenario(limiter: SharedLimiter, client: redis.asyncio.Redis) -> tuple[int, int]:
        await client.set(stopped_job, "cancelled")
        limits = Limits(max_concurrent=200, requests_per_minute=1000)
        calls = [
            limiter.acquire(scope, limits, abort_key=stopped_job if index % 2 else running_job) for index in range(150)
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        granted = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, LimiterAborted)]
        rpm_used = await client.zcard(f"{redis_namespace}:limits:{scope}:rpm")
        for lease in granted:
            limiter.release(lease)
        return len(granted), len(refused), rpm_used

    granted, refused, rpm_used = _run(scenario, infra, redis_namespace)

    assert (granted, refused) == (75, 75)
    assert rpm_used == 75, "a refused caller was counted against the provider's rate"
