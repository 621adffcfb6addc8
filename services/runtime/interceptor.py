"""The one server interceptor every threaded service installs: request ids, JSON access
logs naming the caller's token and project, metrics, the bound on open streams, and the
mapping of errors to gRPC statuses (aio_server.py is the gateway's asyncio twin).

- ServiceError            -> its code, ErrorInfo reason (and BadRequest violations)
- grpc.RpcError (a downstream call failed) -> the same status, passed through unchanged
- a database connection error (restart, terminated connection, pool timeout)
                          -> UNAVAILABLE (DATABASE_UNAVAILABLE): transient, clients retry
- a Redis connection error (queue, stop flags) -> UNAVAILABLE (QUEUE_UNAVAILABLE)
- anything else           -> INTERNAL, logged once with its traceback
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import redis

from services.runtime.call_metadata import (
    CALLER_PROJECT_KEY,
    CALLER_TOKEN_KEY,
    REQUEST_ID_KEY,
    caller_project_var,
    caller_token_var,
)
from services.runtime.database import CONNECTION_ERRORS
from services.runtime.errors import QuotaViolation, ResourceExhausted, ServiceError, Unavailable
from services.runtime.json_logging import request_id_var
from services.runtime.metrics import GRPC_REQUEST_SECONDS, GRPC_REQUESTS
from services.runtime.status import passthrough_status, status_for
from services.vocabulary.reasons import Reason

log = logging.getLogger("synthtasks.access")


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item_key, value in details.invocation_metadata or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return None


def access_log(method: str, code: grpc.StatusCode, elapsed: float) -> None:
    """One line per call: what, for whom (the token's name, never its secret), how it ended."""
    log.info(
        "rpc",
        extra={
            "method": method,
            "code": code.name,
            "duration_ms": round(elapsed * 1000, 2),
            "token": caller_token_var.get(),
            "project": caller_project_var.get(),
        },
    )


def streams_exhausted(service: str, limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"{service} has {limit} streams open, its limit; retry later",
        [QuotaViolation(f"services/{service}", f"concurrent-streams: limit {limit}")],
        reason=Reason.TOO_MANY_STREAMS,
    )


def dependency_unavailable(error: Exception, method: str) -> Unavailable | None:
    """The UNAVAILABLE error for a transient fault of a dependency (the database, Redis),
    None for any other error. Shared with the gateway's asyncio interceptor."""
    if isinstance(error, CONNECTION_ERRORS):
        log.warning("database unavailable", extra={"method": method, "error": type(error).__name__})
        return Unavailable("the database is unavailable; retry", reason=Reason.DATABASE_UNAVAILABLE)
    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        log.warning("redis unavailable", extra={"method": method, "error": type(error).__name__})
        return Unavailable("the job queue is unavailable; retry", reason=Reason.QUEUE_UNAVAILABLE)
    return None


def _left_by_client(context: grpc.ServicerContext) -> grpc.StatusCode:
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 else grpc.StatusCode.CANCELLED


class ServiceInterceptor(grpc.ServerInterceptor):
    """`trust_caller_metadata`: take the caller's identity from the gateway's metadata
    (only behind the internal credential). `max_streams`: server-streaming calls open
    at once; more are refused so that the remaining threads serve unary calls."""

    def __init__(self, service: str, *, trust_caller_metadata: bool = False, max_streams: int | None = None) -> None:
        self._service = service
        self._trust_caller_metadata = trust_caller_metadata
        self._max_streams = max_streams
        self._stream_slots = threading.BoundedSemaphore(max_streams) if max_streams else None

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        request_id = _metadata_value(handler_call_details, REQUEST_ID_KEY) or uuid.uuid4().hex
        caller = (
            (
                _metadata_value(handler_call_details, CALLER_TOKEN_KEY) or "",
                _metadata_value(handler_call_details, CALLER_PROJECT_KEY) or "",
            )
            if self._trust_caller_metadata
            else ("", "")
        )
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, request_id, caller),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method, request_id, caller),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Client-streaming methods are only reflection's; they need no mapping.
        return handler

    @staticmethod
    def _enter(request_id: str, caller: tuple[str, str]) -> None:
        # Pool threads keep their context between calls: set every variable each time.
        request_id_var.set(request_id)
        caller_token_var.set(caller[0])
        caller_project_var.set(caller[1])

    def _unary(self, behavior: Callable, method: str, request_id: str, caller: tuple[str, str]) -> Callable:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            self._enter(request_id, caller)
            started = time.perf_counter()
            try:
                return behavior(request, context)
            except Exception as error:  # noqa: BLE001 - every fault must become a status
                self._abort(context, error, method)
            finally:
                self._record(context, method, started)

        return wrapper

    def _stream(self, behavior: Callable, method: str, request_id: str, caller: tuple[str, str]) -> Callable:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._enter(request_id, caller)
            started = time.perf_counter()
            slots = self._stream_slots
            holding = False
            abandoned = False
            try:
                if slots is not None:
                    holding = slots.acquire(blocking=False)
                    if not holding:
                        raise streams_exhausted(self._service, self._max_streams or 0)
                yield from behavior(request, context)
            except GeneratorExit:
                # grpc closes the stream's generator when the client cancels or its deadline
                # passes: no status of ours is sent, so the call is not counted as OK.
                abandoned = True
                raise
            except Exception as error:  # noqa: BLE001 - every fault must become a status
                self._abort(context, error, method)
            finally:
                if holding and slots is not None:
                    slots.release()
                self._record(context, method, started, abandoned=abandoned)

        return wrapper

    def _abort(self, context: grpc.ServicerContext, error: Exception, method: str) -> None:
        if isinstance(error, ServiceError):
            context.abort_with_status(status_for(error))
        if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
            context.abort_with_status(passthrough_status(error))
        unavailable = dependency_unavailable(error, method)
        if unavailable is not None:
            context.abort_with_status(status_for(unavailable))
        if context.code() not in (None, grpc.StatusCode.OK):  # type: ignore[attr-defined]  # grpcio has it, its stubs not
            raise error  # the servicer aborted the call itself
        log.error("unexpected error", exc_info=error, extra={"method": method})
        context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log for this request id")

    def _record(self, context: grpc.ServicerContext, method: str, started: float, *, abandoned: bool = False) -> None:
        elapsed = time.perf_counter() - started
        code = context.code()  # type: ignore[attr-defined]  # grpcio has it, its stubs not
        if code is None:
            # A call the client left (cancelled, or its deadline passed) got no status of
            # ours, whether the handler noticed (is_active) or grpc closed the stream.
            code = _left_by_client(context) if abandoned or not context.is_active() else grpc.StatusCode.OK
        GRPC_REQUESTS.labels(self._service, method, code.name).inc()
        GRPC_REQUEST_SECONDS.labels(self._service, method).observe(elapsed)
        access_log(method, code, elapsed)
