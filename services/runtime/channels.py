"""gRPC channels between services: TLS when configured, the internal credential on
every call."""

from __future__ import annotations

import grpc

from services.runtime.config import CommonSettings, TlsSettings
from services.runtime.internal_auth import attach_internal_credential

_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
]


def raw_channel(address: str, tls: TlsSettings) -> grpc.Channel:
    """A channel without the internal credential (health checks, public clients)."""
    if tls.tls_ca_file is None:
        return grpc.insecure_channel(address, options=_OPTIONS)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.tls_ca_file.read_bytes(),
        private_key=tls.tls_key_file.read_bytes() if tls.tls_key_file else None,
        certificate_chain=tls.tls_cert_file.read_bytes() if tls.tls_cert_file else None,
    )
    return grpc.secure_channel(address, credentials, options=_OPTIONS)


def internal_channel(address: str, settings: CommonSettings) -> grpc.Channel:
    """A channel to another synthtasks service, carrying the internal credential."""
    return grpc.intercept_channel(
        raw_channel(address, settings),
        attach_internal_credential(settings.internal_token.get_secret_value()),
    )
