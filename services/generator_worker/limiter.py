"""Provider limits shared by every worker process, kept in Redis.

One scope per provider, three limits (0 = none), all checked and taken in one Lua script
so that a call either gets all of its capacity or none of it:

- concurrent requests: a lease per call in a sorted set scored by its expiry. Holders
  renew their leases every lease_ttl/4 from a background task, so a process killed with
  SIGKILL frees its leases after at most lease_ttl (2 s by default), without anyone
  cleaning up for it.
- requests per minute: an exact sliding window (a sorted set of grant times). The window
  is 60 s plus a small margin, because the provider counts arrivals, which lag grants by
  a variable few milliseconds; without the margin two grants exactly 60 s apart can
  arrive 59.99 s apart. An exact window allows a burst of the whole minute's budget at
  once and never more than the budget in any 60 s - the rule providers count by.
- tokens per minute: a token bucket of capacity TPM refilled continuously. A call takes
  an estimate (prompt length + max output tokens) up front; after the call the caller
  reconciles with the usage the provider reported, so over-estimates are given back.

Besides the limits: a pause. When the provider answers 429 with Retry-After, the caller
pauses the scope for that long (`pause`) and no process is granted a call until it ends:
the provider's own limit, whatever ours say, is spent, and calls sent meanwhile would
only come back 429 too and burn their retries.

Waiting: `acquire` waits for capacity; given `give_up_after`, it raises NoCapacity instead
once the wait so far plus the wait the script predicts (RPM, TPM, a pause) would exceed
it, so that the caller can hand its work back rather than hold it. The script says how
long until its RPM/TPM capacity frees (the waiter sleeps that long, in steps of at most a
second so that an abort key is seen); for concurrency it cannot know (a lease usually
ends by release, not expiry), so the waiter wakes on a local release or polls. The
callers of one scope in one process wait in a queue (first come, first served) served by
one task, which asks Redis for up to 64 of them in one script call: the script grants in
order until one must wait, so a burst of calls, or the calls freed by a batch of
releases, costs one round trip, not one per call.

Releases cost no round trip of their own: they travel with the process's next acquire
of the scope, or are sent within 5 ms (SharedLimiter).

Granted calls of a job (the cancel handshake, generation_queue/stop_flags.py): given a
`calls_key`, the script that checks the job's stop flag and grants also records the
grant there, scored by a send-by time; `release` removes it (batched like releases). The
caller must not start sending a call after its `send_by`. A cancel raises the flag, then
waits until no recorded grant is live: every call granted before the flag has then
finished or will never be sent.

Clocks: the script uses Redis's TIME, one clock for every process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio

from services.generator_worker.metrics import RATE_LIMITER_WAIT_SECONDS

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
WINDOW_MARGIN_SECONDS = 0.5
# How much earlier than the recorded send-by time a caller stops sending: covers the time
# between Redis scoring the record and this process reading the reply.
_SEND_BY_MARGIN_SECONDS = 0.25
# Callers served per script call: bounds how long one call holds Redis.
_MAX_BATCH = 64
# ... and when concurrency is the limit, at most this share of it: granting the calls
# freed by many releases at once sends them together, they end together, and the
# provider's concurrency then runs in waves with gaps between them (100 ms calls, 64
# allowed, one process: 525 texts/s with batches of up to 64, 570 with 4 or 1). Large
# batches save round trips and CPU, so the cap grows with the limit.
_SATURATED_BATCH_SHARE = 16

_REFILL = """
local function refill(key, tpm, now)
  local state = redis.call('HMGET', key, 'level', 'ts')
  local level = tonumber(state[1]) or tpm
  local ts = tonumber(state[2]) or now
  if now > ts then level = math.min(tpm, level + (now - ts) * tpm / 60000) end
  return level
end
-- Leases this process released since its last call, and the tokens they give back.
local function apply_releases(concurrency_key, tpm_key, tpm, refund, first, now)
  for i = first, #ARGV do redis.call('ZREM', concurrency_key, ARGV[i]) end
  if tpm > 0 and refund ~= 0 and redis.call('EXISTS', tpm_key) == 1 then
    local level = math.min(tpm, refill(tpm_key, tpm, now) + refund)
    redis.call('HSET', tpm_key, 'level', tostring(level), 'ts', now)
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# One call serves the callers waiting in this process, first come first served, until
# one must wait (a batch: one round trip for every grant that fits, not one per call).
# KEYS: concurrency zset, rpm zset, tpm hash, pause key, then per caller its abort key and
#       its granted-calls zset
# ARGV: lease ttl ms, max concurrent, rpm, rpm window ms, tpm, tokens given back, caller
#       count, per caller (lease id, tokens, check abort key 0/1, send-by ms (0: record no
#       grant)), then released lease ids...
# Returns {refused, wait_ms, free_slots, known_wait_ms, status...}: one status per caller
# served before the first that must wait (1 granted, -1 its abort key exists); refused 1
# when a caller must wait: wait_ms is the longest wait among the limits that refused, or
# what is left of a pause, free_slots 0 when concurrency refused (-1 unlimited),
# known_wait_ms the part of the wait that is sure - RPM, TPM, pause - since a concurrency
# lease usually ends long before it expires.
_ACQUIRE = (
    _REFILL
    + """
local ttl, max_conc, rpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, tpm, callers = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
apply_releases(KEYS[1], KEYS[3], tpm, tonumber(ARGV[6]), 8 + 4 * callers, now)
local paused_until = tonumber(redis.call('GET', KEYS[4]) or '0')
local free, count, level = -1, 0, 0
if max_conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  free = max_conc - redis.call('ZCARD', KEYS[1])
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  count = redis.call('ZCARD', KEYS[2])
end
if tpm > 0 then level = refill(KEYS[3], tpm, now) end
local statuses, took_tokens = {}, false
local refused, wait, lease_wait, known = 0, 0, 0, 0
for i = 1, callers do
  local arg = 8 + 4 * (i - 1)
  local lease, tokens = ARGV[arg], tonumber(ARGV[arg + 1])
  if ARGV[arg + 2] == '1' and redis.call('EXISTS', KEYS[3 + 2 * i]) == 1 then
    statuses[#statuses + 1] = -1
  elseif paused_until > now then
    refused, wait, known = 1, paused_until - now, paused_until - now
    break
  else
    if max_conc > 0 and free <= 0 then
      refused, free = 1, 0
      local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
      lease_wait = tonumber(first[2]) - now
    end
    if rpm > 0 and count >= rpm then
      refused = 1
      local oldest = redis.call('ZRANGE', KEYS[2], count - rpm, count - rpm, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) + window - now + 1)
    end
    if tpm > 0 and level < math.min(tokens, tpm) then
      refused = 1
      wait = math.max(wait, math.ceil((math.min(tokens, tpm) - level) * 60000 / tpm))
    end
    if refused == 1 then
      known = wait
      wait = math.max(wait, lease_wait, 1)
      break
    end
    if max_conc > 0 then
      redis.call('ZADD', KEYS[1], now + ttl, lease)
      free = free - 1
    end
    if rpm > 0 then
      redis.call('ZADD', KEYS[2], now, lease)
      count = count + 1
    end
    if tpm > 0 then
      level = level - tokens
      took_tokens = true
    end
    local send_by = tonumber(ARGV[arg + 3])
    if send_by > 0 then
      redis.call('ZADD', KEYS[4 + 2 * i], now + send_by, lease)
      redis.call('PEXPIRE', KEYS[4 + 2 * i], send_by + 60000)
    end
    statuses[#statuses + 1] = 1
  end
end
if max_conc > 0 then redis.call('PEXPIRE', KEYS[1], ttl * 4) end
if rpm > 0 and count > 0 then redis.call('PEXPIRE', KEYS[2], window + 60000) end
if took_tokens then
  redis.call('HSET', KEYS[3], 'level', tostring(level), 'ts', now)
  redis.call('PEXPIRE', KEYS[3], 120000)
end
return {refused, wait, free, known, unpack(statuses)}
"""
)

# KEYS: concurrency zset, tpm hash. ARGV: tpm, tokens given back, released lease ids...
_RELEASE = (
    _REFILL
    + """
apply_releases(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), 3, now)
return 1
"""
)

# KEYS: pause key. ARGV: pause ms. Pauses until now + ms, unless already paused longer.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > current then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
return 1
"""

# KEYS: concurrency zset. ARGV: lease ttl ms, lease ids... Extends leases still held.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + ttl, ARGV[i])
end
if renewed > 0 then redis.call('PEXPIRE', KEYS[1], ttl * 4) end
return renewed
"""


class LimiterAborted(Exception):
    """Raised by `acquire` when its abort key exists (the job was stopped)."""


class NoCapacity(Exception):
    """Raised by `acquire` when waiting would outlast `give_up_after`, or when told to stop
    waiting (`interrupted`); `retry_after` is the wait the limiter foresaw, in seconds (0
    when unknown)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"no capacity for {retry_after:.1f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """A provider's limits; 0 means no limit."""

    max_concurrent: int = 0
    requests_per_minute: int = 0
    tokens_per_minute: int = 0


@dataclass(frozen=True)
class Lease:
    """Capacity for one provider call; give it back with `SharedLimiter.release`."""

    id: str
    scope: str
    limits: Limits
    tokens: int
    # Where the grant is recorded for the cancel handshake, and the time.monotonic() after
    # which the call must not be sent (None: not recorded).
    calls_key: str | None = None
    send_by: float | None = None


@dataclass(eq=False)
class _Waiter:
    """One `acquire` waiting in this process for its scope's driver to get it a lease."""

    lease_id: str
    limits: Limits
    tokens: int
    abort_key: str | None
    calls_key: str | None
    send_within_seconds: float
    give_up_after: float | None
    interrupted: Callable[[], bool] | None
    started: float
    granted: asyncio.Future[Lease]


class _Gate:
    """Per scope and process: the callers waiting for a lease (first come, first served),
    the one task asking Redis for them, a wake-up on local releases, and the releases not
    yet sent to Redis."""

    def __init__(self) -> None:
        self.waiting: collections.deque[_Waiter] = collections.deque()
        self.driver: asyncio.Task | None = None
        self.released = asyncio.Event()
        # Concurrency was full at our last look: wait for a release before asking again.
        self.full = False
        # Concurrency left at our last look (-1: unlimited or not known yet).
        self.free = -1
        self.pending: list[str] = []
        self.refund = 0
        self.tokens_per_minute = 0
        self.flush: asyncio.TimerHandle | None = None

    def take_releases(self) -> tuple[int, list[str]]:
        released, refund = self.pending, self.refund
        self.pending, self.refund = [], 0
        if self.flush is not None:
            self.flush.cancel()
            self.flush = None
        return refund, released


class SharedLimiter:
    """Limits shared through Redis by every process using the same namespace.

    One instance per event loop (it holds asyncio primitives and a renewal task).

    A release costs no Redis call of its own when it can be avoided: released leases
    travel with this process's next acquire of the same scope (when the provider is
    saturated, a call's release and the next call's grant are one round trip), or are
    sent after `release_delay_seconds` when no acquire comes first. Other processes thus
    see freed capacity at most that late."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        *,
        lease_ttl_seconds: float = 2.0,
        window_seconds: float = WINDOW_SECONDS,
        window_margin_seconds: float = WINDOW_MARGIN_SECONDS,
        poll_seconds: float = 0.02,
        max_step_seconds: float = 1.0,
        release_delay_seconds: float = 0.005,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._lease_ttl_ms = int(lease_ttl_seconds * 1000)
        self._window_ms = int((window_seconds + window_margin_seconds) * 1000)
        self._poll_seconds = poll_seconds
        self._max_step_seconds = max_step_seconds
        self._release_delay = release_delay_seconds
        self._acquire_script = client.register_script(_ACQUIRE)
        self._release_script = client.register_script(_RELEASE)
        self._renew_script = client.register_script(_RENEW)
        self._pause_script = client.register_script(_PAUSE)
        self._gates: dict[str, _Gate] = {}
        self._held: dict[str, Lease] = {}
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:12]
        self._renewer: asyncio.Task | None = None
        self._flushes: set[asyncio.Task] = set()
        # Recorded grants whose calls ended, by granted-calls key, not yet removed from Redis.
        self._finished_calls: dict[str, list[str]] = {}
        self._calls_flush: asyncio.TimerHandle | None = None

    def _keys(self, scope: str) -> tuple[str, str, str]:
        base = f"{self._namespace}:limits:{scope}"
        return f"{base}:concurrency", f"{base}:rpm", f"{base}:tpm"

    def _pause_key(self, scope: str) -> str:
        return f"{self._namespace}:limits:{scope}:pause"

    async def acquire(
        self,
        scope: str,
        limits: Limits,
        *,
        tokens: int = 0,
        abort_key: str | None = None,
        calls_key: str | None = None,
        send_within_seconds: float = 5.0,
        give_up_after: float | None = None,
        interrupted: Callable[[], bool] | None = None,
    ) -> Lease:
        """Wait until `scope` has capacity for one call of about `tokens` tokens, then take it.

        Raises LimiterAborted as soon as `abort_key` exists (checked on every attempt, in
        the same script that grants, so nothing is granted once the key is set). With
        `calls_key`, the grant is recorded there (module docstring) and the lease's
        `send_by` is `send_within_seconds` from now. Raises NoCapacity when the wait
        would outlast `give_up_after` seconds, or as soon as `interrupted()` is true."""
        if interrupted is not None and interrupted():
            raise NoCapacity(0.0)
        gate = self._gates.setdefault(scope, _Gate())
        waiter = _Waiter(
            lease_id=f"{self._prefix}:{next(self._ids)}",
            limits=limits,
            tokens=max(0, int(tokens)),
            abort_key=abort_key,
            calls_key=calls_key,
            send_within_seconds=send_within_seconds,
            give_up_after=give_up_after,
            interrupted=interrupted,
            started=time.perf_counter(),
            granted=asyncio.get_running_loop().create_future(),
        )
        gate.waiting.append(waiter)
        if gate.driver is None or gate.driver.done():
            gate.driver = asyncio.get_running_loop().create_task(self._drive(scope, gate), name=f"limiter:{scope}")
        try:
            lease = await waiter.granted
        except asyncio.CancelledError:
            # The driver skips a waiter whose future is done; a lease granted in the same
            # instant as the cancellation goes straight back.
            if waiter.granted.done() and not waiter.granted.cancelled() and waiter.granted.exception() is None:
                self.release(waiter.granted.result(), tokens_used=0)
            raise
        RATE_LIMITER_WAIT_SECONDS.observe(time.perf_counter() - waiter.started)
        return lease

    async def _drive(self, scope: str, gate: _Gate) -> None:
        """Ask Redis for the scope's waiting callers, in batches, until none is left."""
        batch: list[_Waiter] = []
        try:
            while self._still_waiting(gate):
                if gate.full:
                    await self._sleep_until_release(gate, self._poll_seconds)
                    if not self._still_waiting(gate):
                        return
                gate.released.clear()
                batch = self._take_batch(gate, self._batch_size(gate))
                refused, wait_ms, free, known_wait_ms, statuses = await self._ask(scope, gate, batch)
                gate.free = free
                for waiter, status in zip(batch, statuses, strict=False):
                    if status == -1:
                        if not waiter.granted.done():
                            waiter.granted.set_exception(LimiterAborted(waiter.abort_key))
                        continue
                    lease = self._lease(scope, waiter)
                    if waiter.granted.done():  # its caller was cancelled while we asked
                        self.release(lease, tokens_used=0)
                    else:
                        waiter.granted.set_result(lease)
                # Those not served keep their place at the head of the queue.
                gate.waiting.extendleft(reversed(batch[len(statuses) :]))
                batch = []
                if not refused:
                    gate.full = free == 0
                    continue
                self._give_up(gate, known_wait_ms / 1000)
                gate.full = False
                if free == 0 and gate.waiting and gate.waiting[0].limits.max_concurrent > 0:
                    # A release ends the wait early; cross-process releases are seen by polling.
                    await self._sleep_until_release(gate, min(wait_ms / 1000, self._poll_seconds))
                else:
                    # In steps, so that a raised abort key is seen within a step; a local
                    # release (which may give tokens back) ends the step early.
                    await self._sleep_until_release(gate, min(wait_ms / 1000, self._max_step_seconds))
        except BaseException as error:
            # Redis failed (or the loop is closing): every caller waiting here hears of it.
            for waiter in [*batch, *gate.waiting]:
                if waiter.granted.done():
                    continue
                if isinstance(error, Exception):
                    waiter.granted.set_exception(error)
                else:
                    waiter.granted.cancel()
            gate.waiting.clear()
            if not isinstance(error, Exception):
                raise

    @staticmethod
    def _still_waiting(gate: _Gate) -> bool:
        """Drop the waiters at the head that no longer wait (cancelled, gave up) or are told
        to stop (`interrupted`: settled here); True while one is left. Only the head is
        looked at, so a round costs the same with 10 or 1,000 waiters; when the worker
        drains, every waiter is interrupted and the whole queue settles at once."""
        while gate.waiting:
            head = gate.waiting[0]
            if not head.granted.done():
                if head.interrupted is None or not head.interrupted():
                    return True
                head.granted.set_exception(NoCapacity(0.0))
            gate.waiting.popleft()
        return False

    @staticmethod
    def _give_up(gate: _Gate, known_wait: float) -> None:
        """Settle with NoCapacity the waiters whose wait so far plus `known_wait` outlasts
        their give_up_after. Waiters queue in the order they started, so the scan stops at
        the first that still has time."""
        now = time.perf_counter()
        for waiter in gate.waiting:
            if waiter.give_up_after is None or waiter.granted.done():
                continue
            if now - waiter.started + known_wait <= waiter.give_up_after:
                return
            waiter.granted.set_exception(NoCapacity(known_wait))

    @staticmethod
    def _batch_size(gate: _Gate) -> int:
        """How many waiters to ask for: as many as may get concurrency (what was left at
        the last look plus what this process released since; each one asked for costs its
        keys and arguments in the script call, granted or not), within the caps above."""
        if gate.free < 0:
            return _MAX_BATCH
        cap = min(_MAX_BATCH, max(1, gate.waiting[0].limits.max_concurrent // _SATURATED_BATCH_SHARE))
        return max(1, min(cap, gate.free + len(gate.pending)))

    @staticmethod
    def _take_batch(gate: _Gate, size: int) -> list[_Waiter]:
        """Take the head of the queue: up to `size` waiters still waiting with the first
        one's limits (a credential refreshed mid-job may bring others)."""
        limits = gate.waiting[0].limits
        batch: list[_Waiter] = []
        while gate.waiting and len(batch) < size and gate.waiting[0].limits == limits:
            waiter = gate.waiting.popleft()
            if not waiter.granted.done():
                batch.append(waiter)
        return batch

    async def _ask(self, scope: str, gate: _Gate, batch: list[_Waiter]) -> tuple[int, int, int, int, list[int]]:
        concurrency_key, rpm_key, tpm_key = self._keys(scope)
        limits = batch[0].limits
        refund, released = gate.take_releases()
        keys = [concurrency_key, rpm_key, tpm_key, self._pause_key(scope)]
        per_caller: list[str | int] = []
        for waiter in batch:
            keys += [waiter.abort_key or concurrency_key, waiter.calls_key or concurrency_key]
            send_by_ms = int(waiter.send_within_seconds * 1000) if waiter.calls_key else 0
            per_caller += [waiter.lease_id, waiter.tokens, 1 if waiter.abort_key else 0, send_by_ms]
        reply = await self._acquire_script(
            keys=keys,
            args=[
                self._lease_ttl_ms,
                limits.max_concurrent,
                limits.requests_per_minute,
                self._window_ms,
                limits.tokens_per_minute,
                refund,
                len(batch),
                *per_caller,
                *released,
            ],
        )
        refused, wait_ms, free, known_wait_ms, *statuses = (int(value) for value in reply)
        return refused, wait_ms, free, known_wait_ms, statuses

    def _lease(self, scope: str, waiter: _Waiter) -> Lease:
        granted = time.monotonic()
        lease = Lease(
            waiter.lease_id,
            scope,
            waiter.limits,
            waiter.tokens,
            calls_key=waiter.calls_key,
            # The record was scored by Redis's clock right before this; a local deadline
            # measured from after the reply is the conservative side of it.
            send_by=granted + waiter.send_within_seconds - _SEND_BY_MARGIN_SECONDS if waiter.calls_key else None,
        )
        if waiter.limits.max_concurrent > 0:
            self._held[lease.id] = lease
            self._ensure_renewer()
        return lease

    def release(self, lease: Lease, *, tokens_used: int | None = None) -> None:
        """Give the lease back; `tokens_used` (the provider's reported usage) replaces the
        estimate taken at acquire (None keeps the estimate). Never blocks: the release
        reaches Redis with the next acquire of the scope or within release_delay."""
        self._held.pop(lease.id, None)
        if lease.calls_key is not None:
            self._finished_calls.setdefault(lease.calls_key, []).append(lease.id)
            if self._calls_flush is None:
                self._calls_flush = asyncio.get_running_loop().call_later(
                    self._release_delay, self._flush_finished_calls_soon
                )
        gate = self._gates.setdefault(lease.scope, _Gate())
        refund = 0 if tokens_used is None else lease.tokens - max(0, int(tokens_used))
        if lease.limits.max_concurrent > 0:
            gate.pending.append(lease.id)
        if lease.limits.tokens_per_minute > 0:
            gate.refund += refund
            gate.tokens_per_minute = lease.limits.tokens_per_minute
        if (gate.pending or gate.refund) and gate.flush is None:
            gate.flush = asyncio.get_running_loop().call_later(self._release_delay, self._flush_soon, lease.scope)
        gate.full = False
        gate.released.set()

    async def pause(self, scope: str, seconds: float) -> None:
        """Grant no call of `scope`, in any process, for `seconds` (a longer pause already
        running is kept). Best effort: without Redis the caller's own backoff remains."""
        try:
            await self._pause_script(keys=[self._pause_key(scope)], args=[max(1, int(seconds * 1000))])
        except redis.RedisError as error:
            log.warning("pausing the provider failed", extra={"scope": scope, "error": type(error).__name__})

    async def close(self) -> None:
        """Send the releases still pending and stop renewing leases."""
        for scope in list(self._gates):
            await self._flush(scope)
        await self._flush_finished_calls()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    def _flush_soon(self, scope: str) -> None:
        self._gates[scope].flush = None
        task = asyncio.get_running_loop().create_task(self._flush(scope))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _flush_finished_calls_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush_finished_calls())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_finished_calls(self) -> None:
        if self._calls_flush is not None:
            self._calls_flush.cancel()
            self._calls_flush = None
        finished, self._finished_calls = self._finished_calls, {}
        if not finished:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, ids in finished.items():
                    pipe.zrem(key, *ids)
                await pipe.execute()
        except redis.RedisError as error:
            # A record left behind only makes a cancel wait until its send-by time.
            log.warning("removing finished calls failed", extra={"error": type(error).__name__})

    async def _flush(self, scope: str) -> None:
        gate = self._gates[scope]
        refund, released = gate.take_releases()
        if not released and not refund:
            return
        concurrency_key, _, tpm_key = self._keys(scope)
        try:
            await self._release_script(
                keys=[concurrency_key, tpm_key], args=[gate.tokens_per_minute, refund, *released]
            )
        except redis.RedisError as error:
            # Unrenewed, the leases expire within lease_ttl all the same.
            log.warning("lease release failed", extra={"scope": scope, "error": type(error).__name__})

    async def _sleep_until_release(self, gate: _Gate, timeout: float) -> None:
        # asyncio.timeout rather than wait_for: no task per wait (one per grant when the
        # provider is saturated).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await gate.released.wait()

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(), name="limiter-lease-renewal")

    async def _renew_forever(self) -> None:
        interval = self._lease_ttl_ms / 4000
        while True:
            await asyncio.sleep(interval)
            by_scope: dict[str, list[str]] = {}
            for lease in list(self._held.values()):
                by_scope.setdefault(lease.scope, []).append(lease.id)
            for scope, ids in by_scope.items():
                try:
                    await self._renew_script(keys=[self._keys(scope)[0]], args=[self._lease_ttl_ms, *ids])
                except redis.RedisError as error:
                    # Leases outlive one missed renewal (ttl/3 interval); the next try may work.
                    log.warning("lease renewal failed", extra={"scope": scope, "error": type(error).__name__})
