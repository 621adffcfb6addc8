"""gRPC channels between services: TLS when configured, the internal credential, request
id, caller and trace context on every call (call_metadata.py), and calls spread over
every address a name resolves to."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from services.runtime.call_metadata import forwarded_metadata
from services.runtime.config import CommonSettings, TlsSettings
from services.runtime.internal_auth import INTERNAL_TOKEN_KEY, attach_internal_credential

_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    # One subchannel per address the target resolves to, calls taken in turn. With a
    # headless Service (dns:///name:port, deploy/k8s) every replica gets calls; with an
    # ordinary name it is one address, as before. The servers' max_connection_age makes
    # clients reconnect, and so resolve again, every few minutes: new replicas get work.
    ("grpc.lb_policy_name", "round_robin"),
]


def system_root_certificates() -> bytes:
    """The system's trusted root certificates (PEM), as OpenSSL finds them; grpc would
    otherwise use the bundle it ships with."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    raise FileNotFoundError("no system CA bundle found (install ca-certificates, or set SYNTHTASKS_TLS_CA_FILE)")


def root_certificates(ca_file: Path | None, *, system_roots: bool) -> bytes | None:
    """What a client trusts: the CA file, the system roots, or both; None: no TLS."""
    if ca_file is None and not system_roots:
        return None
    return (ca_file.read_bytes() if ca_file else b"") + (b"\n" + system_root_certificates() if system_roots else b"")


def _channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials | None:
    roots = root_certificates(tls.tls_ca_file, system_roots=tls.tls_system_roots)
    if roots is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=roots,
        private_key=tls.tls_key_file.read_bytes() if tls.tls_key_file else None,
        certificate_chain=tls.tls_cert_file.read_bytes() if tls.tls_cert_file else None,
    )


def raw_channel(address: str, tls: TlsSettings) -> grpc.Channel:
    """A channel without the internal credential (health checks, public clients)."""
    credentials = _channel_credentials(tls)
    if credentials is None:
        return grpc.insecure_channel(address, options=_OPTIONS)
    return grpc.secure_channel(address, credentials, options=_OPTIONS)


def internal_channel(address: str, settings: CommonSettings) -> grpc.Channel:
    """A channel to another synthtasks service, carrying the internal credential."""
    return grpc.intercept_channel(
        raw_channel(address, settings),
        attach_internal_credential(settings.internal_token.get_secret_value()),
    )


class _AttachMetadataAio:
    """The asyncio twin of call_metadata.AttachMetadata: fixed pairs, the request id and the caller."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = [*(details.metadata or ()), *self._pairs, *forwarded_metadata()]
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, grpc.aio.Metadata(*metadata), details.credentials, details.wait_for_ready
        )


# Two classes, not one with both methods: an asyncio channel files each interceptor
# under the first call kind it implements only.
class _AttachMetadataAioUnary(_AttachMetadataAio, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _AttachMetadataAioStream(_AttachMetadataAio, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


# For channels that relay streams to a client at the client's pace (the gateway's):
# without BDP probing the receive window stays at HTTP/2's 64 KiB, so a stream whose
# client stops reading holds at most that much in flight instead of megabytes.
RELAY_OPTIONS = [("grpc.http2.bdp_probe", 0)]


def internal_aio_channel(
    address: str, settings: CommonSettings, *, extra_options: list[tuple[str, int]] | None = None
) -> grpc.aio.Channel:
    """The asyncio twin of `internal_channel`, for callers on an event loop (the workers,
    the gateway's streams).

    Bound to the event loop it is first used on; create it on that loop."""
    credential = [(INTERNAL_TOKEN_KEY, settings.internal_token.get_secret_value())]
    interceptors: list[grpc.aio.ClientInterceptor] = [
        _AttachMetadataAioUnary(credential),
        _AttachMetadataAioStream(credential),
    ]
    options = [*_OPTIONS, *(extra_options or ())]
    credentials = _channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)
