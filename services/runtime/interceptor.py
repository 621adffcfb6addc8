"""The one server interceptor every service installs: request ids, JSON access logs,
metrics, and the mapping of errors to gRPC statuses.

- ServiceError            -> its code, ErrorInfo reason (and BadRequest violations)
- grpc.RpcError (a downstream call failed) -> the same status, passed through unchanged
- anything else           -> INTERNAL, logged once with its traceback
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from services.runtime.call_metadata import REQUEST_ID_KEY
from services.runtime.errors import ServiceError
from services.runtime.json_logging import request_id_var
from services.runtime.metrics import GRPC_REQUEST_SECONDS, GRPC_REQUESTS
from services.runtime.status import passthrough_status, status_for

log = logging.getLogger("synthtasks.access")


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item_key, value in details.invocation_metadata or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return None


class ServiceInterceptor(grpc.ServerInterceptor):
    def __init__(self, service: str) -> None:
        self._service = service

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        request_id = _metadata_value(handler_call_details, REQUEST_ID_KEY) or uuid.uuid4().hex
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, request_id),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method, request_id),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Client-streaming methods are only reflection's; they need no mapping.
        return handler

    def _unary(self, behavior: Callable, method: str, request_id: str) -> Callable:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            request_id_var.set(request_id)
            started = time.perf_counter()
            try:
                return behavior(request, context)
            except Exception as error:  # noqa: BLE001 - every fault must become a status
                self._abort(context, error, method)
            finally:
                self._record(context, method, started)

        return wrapper

    def _stream(self, behavior: Callable, method: str, request_id: str) -> Callable:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            request_id_var.set(request_id)
            started = time.perf_counter()
            try:
                yield from behavior(request, context)
            except Exception as error:  # noqa: BLE001 - every fault must become a status
                self._abort(context, error, method)
            finally:
                self._record(context, method, started)

        return wrapper

    def _abort(self, context: grpc.ServicerContext, error: Exception, method: str) -> None:
        if isinstance(error, ServiceError):
            context.abort_with_status(status_for(error))
        if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
            context.abort_with_status(passthrough_status(error))
        if context.code() not in (None, grpc.StatusCode.OK):
            raise error  # the servicer aborted the call itself
        log.exception("unexpected error", extra={"method": method})
        context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log for this request id")

    def _record(self, context: grpc.ServicerContext, method: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        code = context.code() or grpc.StatusCode.OK
        GRPC_REQUESTS.labels(self._service, method, code.name).inc()
        GRPC_REQUEST_SECONDS.labels(self._service, method).observe(elapsed)
        log.info(
            "rpc",
            extra={"method": method, "code": code.name, "duration_ms": round(elapsed * 1000, 2)},
        )
