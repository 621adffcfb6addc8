"""The "job stopped" flag on Redis: raised when a job is cancelled (by the gateway,
before it acknowledges the cancel) or fails as a whole (by the worker that found the
bad key). Workers check it atomically with taking provider capacity, right before every
provider call, so no call starts once the flag is up."""

from __future__ import annotations

import redis
import redis.asyncio

# Long enough to outlive every message of the job (retries included); Redis forgets it after.
STOP_FLAG_TTL_SECONDS = 7 * 24 * 3600


def stop_key(namespace: str, job: str) -> str:
    return f"{namespace}:job-stopped:{job}"


def mark_job_stopped(client: redis.Redis, namespace: str, job: str, reason: str = "cancelled") -> None:
    """Raise the flag (idempotent). `reason` is for people reading Redis; workers only test existence."""
    client.set(stop_key(namespace, job), reason, ex=STOP_FLAG_TTL_SECONDS)


async def mark_job_stopped_async(client: redis.asyncio.Redis, namespace: str, job: str, reason: str) -> None:
    await client.set(stop_key(namespace, job), reason, ex=STOP_FLAG_TTL_SECONDS)


async def is_job_stopped(client: redis.asyncio.Redis, namespace: str, job: str) -> bool:
    return bool(await client.exists(stop_key(namespace, job)))
