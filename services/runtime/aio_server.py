"""The asyncio gRPC server, for a service whose clients hold long streams (the gateway).

Why asyncio: on the threaded server every open stream holds one of the pool's threads
for as long as it lasts, so a few dozen idle Watch streams starve every other call and
the health check. Here a stream is a coroutine that costs no thread while it waits;
unary handlers written as plain functions run in a bounded thread pool (they call
blocking stubs), and the health service answers on the event loop itself, so it never
queues behind either.

The server runs its event loop in a thread of its own: `create_aio_server` returns once
it serves, and `AioBuiltServer.stop()` is a plain blocking call like the threaded
server's, so the wiring, tests and `run_until_signalled` treat both alike.

`AsyncServiceInterceptor` is the asyncio twin of interceptor.ServiceInterceptor:
request ids, access logs naming the caller, metrics, errors mapped to statuses.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime.call_metadata import REQUEST_ID_KEY, caller_project_var, caller_token_var
from services.runtime.errors import ServiceError
from services.runtime.interceptor import access_log, dependency_unavailable
from services.runtime.json_logging import request_id_var
from services.runtime.metrics import GRPC_REQUEST_SECONDS, GRPC_REQUESTS
from services.runtime.server import SERVER_OPTIONS, ListenerTls, Registration
from services.runtime.status import PassthroughStatus, passthrough_status, status_for
from services.runtime.tracing import end_server_span, server_span

log = logging.getLogger(__name__)


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for item_key, value in details.invocation_metadata or ():
        if item_key == key:
            return value if isinstance(value, str) else value.decode()
    return None


class AsyncServiceInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary handlers (coroutines, or plain functions run in `pool`) and
    server-streaming coroutines (that write with `context.write`)."""

    def __init__(self, service: str, pool: futures.ThreadPoolExecutor) -> None:
        self._service = service
        self._pool = pool

    async def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
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
        if handler.unary_stream and inspect.iscoroutinefunction(handler.unary_stream):
            return grpc.unary_stream_rpc_method_handler(
                self._unary(handler.unary_stream, method, request_id),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Reflection's bidirectional stream and the health Watch need no mapping.
        return handler

    def _unary(self, behavior: Callable, method: str, request_id: str) -> Callable:
        is_coroutine = inspect.iscoroutinefunction(behavior)

        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with server_span(method, context.invocation_metadata()) as span:
                return await traced(request, context, span)

        async def traced(request: Any, context: grpc.aio.ServicerContext, span: Any) -> Any:
            request_id_var.set(request_id)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if is_coroutine:
                    return await behavior(request, context)
                # The thread runs in a copy of this context: the request id goes in,
                # and the caller it identifies is read back for the access log.
                call_context = contextvars.copy_context()
                try:
                    return await asyncio.get_running_loop().run_in_executor(
                        self._pool, call_context.run, behavior, request, context
                    )
                finally:
                    caller_token_var.set(call_context.get(caller_token_var, ""))
                    caller_project_var.set(call_context.get(caller_project_var, ""))
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise  # the handler aborted the call itself
            except Exception as error:  # noqa: BLE001 - every fault must become a status
                status = self._status(error, method)
                code = status.code
                await context.abort(status.code, status.details, status.trailing_metadata)
            finally:
                end_server_span(span, code)
                self._record(method, code, started)

        return wrapper

    @staticmethod
    def _status(error: Exception, method: str) -> grpc.Status:
        if isinstance(error, ServiceError):
            return status_for(error)
        if isinstance(error, grpc.aio.AioRpcError) or (
            isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call)
        ):
            return passthrough_status(error)
        unavailable = dependency_unavailable(error, method)
        if unavailable is not None:
            return status_for(unavailable)
        log.error("unexpected error", extra={"method": method}, exc_info=error)
        return PassthroughStatus(
            grpc.StatusCode.INTERNAL, "internal error; see the service log for this request id", ()
        )

    def _record(self, method: str, code: grpc.StatusCode, started: float) -> None:
        elapsed = time.perf_counter() - started
        GRPC_REQUESTS.labels(self._service, method, code.name).inc()
        GRPC_REQUEST_SECONDS.labels(self._service, method).observe(elapsed)
        access_log(method, code, elapsed)


@dataclass
class AioBuiltServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]
    loop: asyncio.AbstractEventLoop
    loop_thread: threading.Thread
    pool: futures.ThreadPoolExecutor
    # Resources to release once calls have drained: on the loop (aio channels), then off it.
    on_loop_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def run(self, coroutine: Any, timeout: float | None = None) -> Any:
        """Run `coroutine` on the server's loop from any other thread; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, grace: float = 5.0) -> None:
        async def drain() -> None:
            await self.health.enter_graceful_shutdown()
            await self.server.stop(grace)
            for release in self.on_loop_stop:
                await release()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join()
        self.pool.shutdown(wait=True)
        for release in self.on_stop:
            release()
        self.loop.close()


def create_aio_server(
    address: str,
    registrations: list[Registration],
    *,
    service: str,
    max_workers: int = 64,
    on_loop: Callable[[], None] | None = None,
    listener_tls: ListenerTls | None = None,
) -> AioBuiltServer:
    """Build and start an asyncio server on `address` (port 0 picks a free port).

    It serves the public API: its TLS is `listener_tls` (None: plaintext), apart from
    the internal links' mTLS settings, so the two combine.

    `max_workers` threads run the plain-function (blocking) unary handlers. `on_loop`
    runs first on the server's loop: what must be created there (aio channels)."""
    pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    loop_thread = threading.Thread(target=_run_loop, args=(loop, ready), name=f"{service}-loop", daemon=True)
    loop_thread.start()
    ready.wait()
    names = tuple(r.full_name for r in registrations)

    async def start() -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
        if on_loop is not None:
            on_loop()
        server = grpc.aio.server(
            migration_thread_pool=pool,
            interceptors=[AsyncServiceInterceptor(service, pool)],
            options=SERVER_OPTIONS,
        )
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for registration in registrations:
            registration.add_to_server(registration.servicer, server)
        reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        if listener_tls is not None:
            port = server.add_secure_port(address, listener_tls.credentials())
        else:
            port = server.add_insecure_port(address)
        if port == 0:
            raise RuntimeError(f"could not bind {address}")
        await server.start()
        for name in ("", *names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        return server, port, health_servicer

    try:
        server, port, health_servicer = asyncio.run_coroutine_threadsafe(start(), loop).result()
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join()
        pool.shutdown(wait=False)
        raise
    log.info("serving", extra={"address": address, "port": port, "services": names})
    return AioBuiltServer(server, port, health_servicer, names, loop, loop_thread, pool)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
