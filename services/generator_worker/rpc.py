"""Awaiting calls on the runtime's internal gRPC channels (synchronous `grpc.Channel`s
carrying the internal credential) from an event loop, without blocking it: the call runs
as a gRPC future and its completion is handed back to the loop."""

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


async def call(method: grpc.UnaryUnaryMultiCallable, request: Any, *, timeout: float) -> Any:
    """Await one unary call; raises the call's grpc.RpcError."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    call_future = method.future(request, timeout=timeout)

    def hand_over(done: grpc.Future) -> None:
        loop.call_soon_threadsafe(_settle, waiter, done)

    call_future.add_done_callback(hand_over)
    try:
        return await waiter
    except asyncio.CancelledError:
        call_future.cancel()
        raise


def _settle(waiter: asyncio.Future, done: grpc.Future) -> None:
    if waiter.done():
        return
    if done.cancelled():
        waiter.cancel()
        return
    error = done.exception()
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(done.result())


async def call_with_retries(
    method: grpc.UnaryUnaryMultiCallable,
    request: Any,
    *,
    timeout: float,
    what: str,
    attempts: int = 3,
    backoff_seconds: float = 0.2,
) -> Any:
    """`call`, tried again on RETRYABLE_CODES; after the last attempt those become
    DependencyUnavailable (the message is retried later). Other codes are raised as they are."""
    for attempt in range(1, attempts + 1):
        try:
            return await call(method, request, timeout=timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
            if code not in RETRYABLE_CODES:
                raise
            if attempt == attempts:
                raise DependencyUnavailable(f"{what} failed with {code.name}") from None
            await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    return error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
