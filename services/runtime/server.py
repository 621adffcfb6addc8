"""gRPC server bootstrap shared by every service: health checking, reflection, the
error-mapping interceptor, TLS when configured, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime.config import CommonSettings
from services.runtime.interceptor import ServiceInterceptor
from services.runtime.internal_auth import RequireInternalCredential
from services.runtime.tracing import server_interceptors

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    """A running server, threaded or asyncio: stop() drains calls, then releases."""

    port: int

    def stop(self, grace: float = 5.0) -> None: ...


@dataclass(frozen=True)
class Registration:
    """One servicer to serve: the generated `add_XServicer_to_server` and the
    fully-qualified service name (for health and reflection)."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.Server | grpc.aio.Server], None]
    full_name: str


@dataclass
class BuiltServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]
    # Resources to release once calls have drained (connection pools, listeners).
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        for release in self.on_stop:
            release()


SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),
    # Our clients ping every 30 s to keep long watch/export streams alive; the
    # server's default (one ping per 5 minutes) would answer GOAWAY too_many_pings.
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Clients reconnect, and so resolve the service's name again, after this long: they
    # spread calls over the replicas that exist now, not those of their first connect
    # (channels.py balances round-robin over what a name resolves to). No grace limit:
    # open Watch and Export streams finish on the old connection.
    ("grpc.max_connection_age_ms", 5 * 60 * 1000),
]


@dataclass(frozen=True)
class ListenerTls:
    """A TLS listener: its certificate, and the CA its clients' certificates must be
    signed by (None: clients need no certificate)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.client_ca_file.read_bytes() if self.client_ca_file else None,
            require_client_auth=self.client_ca_file is not None,
        )


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    """An internal server's TLS (mTLS with a CA file) when configured; None for
    plaintext. The gateway's public port has settings of its own (ListenerTls)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    return ListenerTls(settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file).credentials()


def create_server(
    address: str,
    registrations: list[Registration],
    *,
    service: str,
    settings: CommonSettings,
    internal_only: bool,
    max_workers: int = 64,
    max_streams: int | None = None,
) -> BuiltServer:
    """Build and start a server on `address` (port 0 picks a free port).

    `max_streams` bounds the server-streaming calls open at once (each holds a thread
    while it waits): beyond it they are refused, so that unary calls and health checks
    always find one of the other threads."""
    # The trace span first, so that it covers refused calls too.
    interceptors: list[grpc.ServerInterceptor] = server_interceptors()
    if internal_only:
        interceptors.append(RequireInternalCredential(settings.internal_token.get_secret_value()))
    interceptors.append(ServiceInterceptor(service, trust_caller_metadata=internal_only, max_streams=max_streams))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=service),
        interceptors=interceptors,
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=max_workers * 4,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(r.full_name for r in registrations)
    for registration in registrations:
        registration.add_to_server(registration.servicer, server)
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    credentials = server_credentials(settings)
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    server.start()
    for name in ("", *names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving", extra={"address": address, "port": port, "services": names})
    return BuiltServer(server, port, health_servicer, names)


def run_until_signalled(built: Stoppable, *, grace: float = 10.0) -> None:
    """Block until SIGTERM/SIGINT, then report NOT_SERVING and drain calls for `grace` seconds."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down", extra={"grace_seconds": grace})
    built.stop(grace)
