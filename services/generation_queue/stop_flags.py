"""The "job stopped" flag on Redis, and the cancel handshake built on it.

The flag is raised when a job is cancelled (by the gateway, before it acknowledges the
cancel) or fails as a whole (by the worker that found the bad key). Workers check it in
the same Redis script that grants them provider capacity, and that script also records
the grant in the job's granted-calls set, scored by a send-by time (a few seconds ahead):
the worker sends the call before then or not at all, and removes the record when the
call has ended.

The handshake: the cancel raises the flag (no grant after that), then waits until the
job has no live record - every call granted before the flag has finished at the
provider, or passed its send-by time unsent. Only then does the gateway acknowledge the
cancel, so no provider call of the job starts, or reaches the provider, afterwards.
The wait is bounded by the send-by time (GRANT_SEND_WITHIN_SECONDS) plus
`timeout_seconds` of slack, whatever the workers do (one killed mid-call included)."""

from __future__ import annotations

import time

import redis
import redis.asyncio

# Long enough to outlive every message of the job (retries included); Redis forgets it after.
STOP_FLAG_TTL_SECONDS = 7 * 24 * 3600
# A granted call is sent within this long after the grant, or never.
GRANT_SEND_WITHIN_SECONDS = 5.0

# KEYS: granted-calls zset. Drops records past their send-by time, counts the rest.
_LIVE_GRANTS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


def stop_key(namespace: str, job: str) -> str:
    return f"{namespace}:job-stopped:{job}"


def granted_calls_key(namespace: str, job: str) -> str:
    """The sorted set of the job's granted, unfinished provider calls (module docstring)."""
    return f"{namespace}:job-calls:{job}"


def mark_job_stopped(client: redis.Redis, namespace: str, job: str, reason: str = "cancelled") -> None:
    """Raise the flag (idempotent). `reason` is for people reading Redis; workers only test existence."""
    client.set(stop_key(namespace, job), reason, ex=STOP_FLAG_TTL_SECONDS)


def wait_for_granted_calls(
    client: redis.Redis, namespace: str, job: str, *, timeout_seconds: float, poll_seconds: float = 0.02
) -> bool:
    """After `mark_job_stopped`: wait until no call of the job is granted and unfinished.
    Returns False if some still were after `timeout_seconds` (a record lives at most
    GRANT_SEND_WITHIN_SECONDS, so a timeout above that is never reached)."""
    live = client.register_script(_LIVE_GRANTS)
    key = granted_calls_key(namespace, job)
    deadline = time.monotonic() + timeout_seconds
    while live(keys=[key]):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_seconds)
    return True


async def mark_job_stopped_async(client: redis.asyncio.Redis, namespace: str, job: str, reason: str) -> None:
    await client.set(stop_key(namespace, job), reason, ex=STOP_FLAG_TTL_SECONDS)


async def is_job_stopped(client: redis.asyncio.Redis, namespace: str, job: str) -> bool:
    return bool(await client.exists(stop_key(namespace, job)))
