"""What one worker process shares between the messages it runs: channels to the task
store and the registry, the Redis client, the shared limiter and the caches of
credentials and SDK clients.

Built lazily on the event loop that runs the async actors (dramatiq's AsyncIO middleware
runs one per process), i.e. after the fork: gRPC channels and connection pools must not
cross a fork."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

import grpc
import redis.asyncio

from services.generator_worker.config import Settings
from services.generator_worker.credentials import CredentialCache
from services.generator_worker.job_store import JobStoreClient
from services.generator_worker.limiter import SharedLimiter
from services.generator_worker.provider_clients import ClientCache
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

    @property
    def namespace(self) -> str:
        return self.settings.redis_namespace

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
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
        )

    async def close(self) -> None:
        await self.limiter.close()
        await self.clients.close()
        await self.redis.aclose()
        for channel in self.channels:
            await channel.close()


_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WorkerContext] = weakref.WeakKeyDictionary()


def context_for_running_loop(settings: Settings) -> WorkerContext:
    loop = asyncio.get_running_loop()
    context = _contexts.get(loop)
    if context is None:
        context = _contexts[loop] = WorkerContext.create(settings)
    return context
