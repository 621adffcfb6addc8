"""A separate OS process using the shared limiter, for the limiter tests:

    python -m tests.generator_worker.limiter_hammer MODE --redis URL --namespace NS --scope S [options]

MODE concurrency: --tasks coroutines acquire/hold/release for --seconds; while holding
  they count themselves in a Redis counter and record any moment it exceeded --limit.
MODE rpm: --tasks coroutines take --limit requests per --window seconds for --seconds and
  RPUSH the time of every grant (as the limiter recorded it) to {namespace}:probe:grants.
MODE hold: take one lease (--limit 1, --lease-ttl) and print HELD, then sleep until killed.
Prints one JSON line with what it did."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time

import redis.asyncio

from services.generator_worker.limiter import Limits, SharedLimiter


async def _concurrency(args: argparse.Namespace, client: redis.asyncio.Redis, limiter: SharedLimiter) -> dict:
    limits = Limits(max_concurrent=args.limit)
    in_use, over = f"{args.namespace}:probe:in-use", f"{args.namespace}:probe:over"
    deadline = time.monotonic() + args.seconds
    granted = 0

    async def run() -> None:
        nonlocal granted
        while time.monotonic() < deadline:
            lease = await limiter.acquire(args.scope, limits)
            try:
                granted += 1
                if await client.incr(in_use) > args.limit:
                    await client.incr(over)
                await asyncio.sleep(random.uniform(0.001, 0.01))
                await client.decr(in_use)
            finally:
                limiter.release(lease)

    await asyncio.gather(*(run() for _ in range(args.tasks)))
    return {"granted": granted}


async def _rpm(args: argparse.Namespace, client: redis.asyncio.Redis, limiter: SharedLimiter) -> dict:
    limits = Limits(requests_per_minute=args.limit)
    grants = f"{args.namespace}:probe:grants"
    deadline = time.monotonic() + args.seconds
    granted = 0

    async def run() -> None:
        nonlocal granted
        while True:
            lease = await limiter.acquire(args.scope, limits)
            # The grant's own time, as the limiter recorded it (Redis TIME, in ms).
            granted_at = await client.zscore(f"{args.namespace}:limits:{args.scope}:rpm", lease.id)
            if time.monotonic() >= deadline:
                return
            granted += 1
            await client.rpush(grants, granted_at)
            limiter.release(lease)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(run() for _ in range(args.tasks))), args.seconds + 5)
    return {"granted": granted}


async def _hold(args: argparse.Namespace, client: redis.asyncio.Redis, limiter: SharedLimiter) -> dict:
    await limiter.acquire(args.scope, Limits(max_concurrent=args.limit))
    print("HELD", flush=True)
    await asyncio.sleep(3600)
    return {}


async def main_async(args: argparse.Namespace) -> None:
    client = redis.asyncio.Redis.from_url(args.redis)
    limiter = SharedLimiter(
        client,
        args.namespace,
        lease_ttl_seconds=args.lease_ttl,
        window_seconds=args.window,
        window_margin_seconds=args.margin,
    )
    mode = {"concurrency": _concurrency, "rpm": _rpm, "hold": _hold}[args.mode]
    try:
        print(json.dumps(await mode(args, client, limiter)), flush=True)
    finally:
        await limiter.close()
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["concurrency", "rpm", "hold"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--scope", required=True)
    parser.add_argument("--limit", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
