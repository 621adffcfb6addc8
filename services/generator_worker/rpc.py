"""Calls to the task store and the registry from the worker's event loop (asyncio gRPC
channels, `services.runtime.channels.internal_aio_channel`), with brief retries of the
failures that are worth retrying at once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc

from services.generator_worker.errors import DependencyUnavailable

# Worth trying again soon: the server is restarting, overloaded, or lost a race.
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    code = error.code() if hasattr(error, "code") else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


async def call_with_retries(
    method: Any,
    request: Any,
    *,
    timeout: float,
    what: str,
    attempts: int = 3,
    backoff_seconds: float = 0.2,
) -> Any:
    """Await one unary call on an asyncio stub, tried again on RETRYABLE_CODES; after the
    last attempt those become DependencyUnavailable (the message is retried later). Other
    codes are raised as they are (grpc.RpcError)."""
    for attempt in range(1, attempts + 1):
        try:
            return await method(request, timeout=timeout)
        except grpc.RpcError as error:
            code = status_code(error)
            if code not in RETRYABLE_CODES:
                raise
            if attempt == attempts:
                raise DependencyUnavailable(f"{what} failed with {code.name}") from None
            await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")
