"""Provider credentials from the registry, cached in memory for a short time.

The key is held only in this process's memory: never logged, never put in an exception
(ProviderCredential messages are not logged anywhere; failures name only the provider).
Concurrent misses for the same provider share one registry call."""

from __future__ import annotations

import asyncio
import time

import grpc
from synthtasks.internal.v1 import credential_service_pb2 as credential_pb
from synthtasks.internal.v1 import credential_service_pb2_grpc

from services.generator_worker import rpc
from services.generator_worker.errors import DependencyUnavailable, ProviderMissing


class CredentialCache:
    def __init__(self, channel: grpc.aio.Channel, *, ttl_seconds: float, timeout: float) -> None:
        self._stub = credential_service_pb2_grpc.CredentialServiceStub(channel)
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._cached: dict[str, tuple[float, credential_pb.ProviderCredential]] = {}
        self._inflight: dict[str, asyncio.Task] = {}

    async def get(self, provider: str) -> credential_pb.ProviderCredential:
        """The credential of `provider` (`providers/{p}`), at most ttl old."""
        cached = self._cached.get(provider)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        return await self.refresh(provider)

    async def refresh(self, provider: str) -> credential_pb.ProviderCredential:
        """Fetch anew (e.g. after the provider refused the key: it may have been rotated)."""
        task = self._inflight.get(provider)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(provider))
            self._inflight[provider] = task
            task.add_done_callback(lambda done: self._forget(provider, done))
        return await asyncio.shield(task)

    def _forget(self, provider: str, done: asyncio.Task) -> None:
        self._inflight.pop(provider, None)
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody awaited is not reported as lost

    async def _fetch(self, provider: str) -> credential_pb.ProviderCredential:
        request = credential_pb.GetProviderCredentialRequest(name=provider)
        try:
            response = await rpc.call_with_retries(
                self._stub.GetProviderCredential, request, timeout=self._timeout, what="GetProviderCredential"
            )
        except grpc.RpcError as error:
            code = rpc.status_code(error)
            if code == grpc.StatusCode.NOT_FOUND:
                raise ProviderMissing(f"{provider} no longer exists") from None
            if code == grpc.StatusCode.FAILED_PRECONDITION:
                # The registry cannot decrypt the stored key: no retry helps, the job fails and says why.
                raise ProviderMissing(f"{provider}: {error.details()}") from None
            raise DependencyUnavailable(f"GetProviderCredential failed with {code.name}") from None
        self._cached[provider] = (time.monotonic(), response.credential)
        return response.credential
