"""SDK clients per (provider, credential etag), so that calls to one provider share one
HTTP connection pool. One cache per event loop: SDK clients are bound to the loop that
first uses their connections.

A new etag (key rotated, endpoint changed) makes a new client; the old one is closed
after the longest call that may still be running on it has had time to end."""

from __future__ import annotations

import asyncio
import contextlib

import openai
from synthtasks.internal.v1 import credential_service_pb2 as credential_pb

from services.provider_access import ProviderEndpoint, async_client

_CLOSE_GRACE_SECONDS = 5.0
# Calls in flight are bounded by the threads, the slots per message and the provider's
# limits, never by the connection pool: a granted call queued for a connection would
# hold capacity unsent (and could miss its send-by time, stop_flags.py).
_MAX_CONNECTIONS = 10_000


def request_timeout(credential: credential_pb.ProviderCredential, default: float) -> float:
    if credential.HasField("request_timeout"):
        seconds = credential.request_timeout.ToTimedelta().total_seconds()
        if seconds > 0:
            return seconds
    return default


class ClientCache:
    def __init__(self, *, default_timeout: float, aiohttp: bool) -> None:
        self._default_timeout = default_timeout
        self._aiohttp = aiohttp
        self._clients: dict[str, tuple[str, openai.AsyncOpenAI]] = {}

    def get(self, credential: credential_pb.ProviderCredential) -> openai.AsyncOpenAI:
        current = self._clients.get(credential.name)
        if current is not None and current[0] == credential.etag:
            return current[1]
        client = async_client(
            ProviderEndpoint.of(credential),
            timeout=request_timeout(credential, self._default_timeout),
            aiohttp=self._aiohttp,
            max_connections=_MAX_CONNECTIONS,
        )
        self._clients[credential.name] = (credential.etag, client)
        if current is not None:
            loop = asyncio.get_running_loop()
            grace = request_timeout(credential, self._default_timeout) + _CLOSE_GRACE_SECONDS
            loop.call_later(grace, lambda: loop.create_task(_close_quietly(current[1])))
        return client

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for _, client in clients.values():
            await _close_quietly(client)


async def _close_quietly(client: openai.AsyncOpenAI) -> None:
    with contextlib.suppress(Exception):
        await client.close()
