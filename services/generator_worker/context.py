"""What one worker process shares between the messages it runs: channels to the task
store and the registry, the Redis client, the shared limiter, the caches of credentials
and SDK clients, the broker (to hand slots back) and whether the process is draining.

Built lazily on the event loop that runs the async actors (dramatiq's AsyncIO middleware
runs one per process), i.e. after the fork: gRPC channels and connection pools must not
cross a fork."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import grpc
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker

from services.generation_queue.hand_back import hand_back
from services.generator_worker.config import Settings
from services.generator_worker.credentials import CredentialCache
from services.generator_worker.job_store import JobStoreClient
from services.generator_worker.limiter import SharedLimiter
from services.generator_worker.provider_clients import ClientCache
from services.generator_worker.results import JobResults
from services.runtime.channels import internal_aio_channel


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.asyncio.Redis
    limiter: SharedLimiter
    job_store: JobStoreClient
    credentials: CredentialCache
    clients: ClientCache
    channels: tuple[grpc.aio.Channel, ...]
    broker: RedisBroker
    # True once the process has been told to stop (drain.py).
    draining: Callable[[], bool]
    # The result batches of the jobs this process is filling, while any message uses them.
    results: dict[str, JobResults] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.settings.redis_namespace

    def job_results(self, job: str) -> JobResults:
        """The result batch that the messages of `job` in this process share (results.py)."""
        shared = self.results.get(job)
        if shared is None:
            shared = self.results[job] = JobResults(
                self.job_store,
                job,
                max_batch=self.settings.append_max_batch,
                max_delay_seconds=self.settings.append_max_delay_ms / 1000,
                on_idle=self._forget_results,
            )
        return shared

    def _forget_results(self, shared: JobResults) -> None:
        if self.results.get(shared.job) is shared:
            del self.results[shared.job]

    async def hand_back(self, job: str, slots: Iterable[int], *, delay_seconds: float) -> None:
        """Enqueue `slots` of `job` again, due in `delay_seconds` (generation_queue/hand_back.py)."""
        # The broker's client is synchronous: one short round trip, off the event loop.
        await asyncio.to_thread(hand_back, self.broker, job, list(slots), delay_ms=int(delay_seconds * 1000))

    @classmethod
    def create(cls, settings: Settings, broker: RedisBroker, draining: Callable[[], bool]) -> WorkerContext:
        """Call on the loop that will use it."""
        client = redis.asyncio.Redis.from_url(settings.redis_url)
        task_store = internal_aio_channel(settings.task_store_address, settings)
        registry = internal_aio_channel(settings.registry_address, settings)
        return cls(
            settings=settings,
            redis=client,
            limiter=SharedLimiter(client, settings.redis_namespace, lease_ttl_seconds=settings.lease_ttl_seconds),
            job_store=JobStoreClient(task_store, timeout=settings.rpc_timeout_seconds),
            credentials=CredentialCache(
                registry, ttl_seconds=settings.credential_ttl_seconds, timeout=settings.rpc_timeout_seconds
            ),
            clients=ClientCache(
                default_timeout=settings.default_request_timeout_seconds,
                aiohttp=settings.http_transport == "aiohttp",
            ),
            channels=(task_store, registry),
            broker=broker,
            draining=draining,
        )

    async def close(self) -> None:
        await self.limiter.close()
        await self.clients.close()
        await self.redis.aclose()
        for channel in self.channels:
            await channel.close()


_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerContext] = weakref.WeakKeyDictionary()


def context_for_running_loop(settings: Settings, broker: RedisBroker, draining: Callable[[], bool]) -> WorkerContext:
    loop = asyncio.get_running_loop()
    context = _contexts.get(loop)
    if context is None:
        context = _contexts[loop] = WorkerContext.create(settings, broker, draining)
    return context
