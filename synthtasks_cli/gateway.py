"""The connection to the gateway: where it is, which token to send, TLS, deadlines.

Every setting comes from a flag, else an environment variable, else the local stack's
state folder, else a default that works with `synthtasks stack up` on this machine:

    address  --gateway   SYNTHTASKS_GATEWAY_ADDRESS  stack.json's gateway   127.0.0.1:50051
    token    --token     SYNTHTASKS_TOKEN            .synthtasks/admin-token (none)
    TLS CA   --tls-ca    SYNTHTASKS_TLS_CA_FILE      (plaintext)
    system roots  --tls-system-roots  SYNTHTASKS_TLS_SYSTEM_ROOTS  (off; on: TLS trusting the system's CAs)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from synthtasks.v1 import (
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)

from services.runtime.channels import root_certificates
from synthtasks_cli.errors import UsageError
from synthtasks_cli.state import StateDir

DEFAULT_GATEWAY = "127.0.0.1:50051"
# The services log every call under this id (taken from the caller when sent).
REQUEST_ID_KEY = "x-request-id"
# Plain reads and writes answer fast; live provider checks wait on the provider (the
# gateway gives them 30 s) and must not be cut short by the client first.
UNARY_TIMEOUT_SECONDS = 30.0
SLOW_TIMEOUT_SECONDS = 120.0

# No client keepalive pings: gRPC servers allow one ping per 5 minutes on a quiet
# connection by default and answer more with GOAWAY (too_many_pings), which would cut a
# long, quiet WatchGenerationJob stream; the watch re-opens dropped streams instead.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
]


@dataclass(frozen=True)
class ClientSettings:
    address: str
    token: str | None = field(default=None, repr=False)
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_system_roots: bool = False
    # None: the defaults above for unary calls and no deadline for streams.
    timeout: float | None = None

    @classmethod
    def resolve(
        cls,
        *,
        gateway: str | None = None,
        token: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_system_roots: bool | None = None,
        timeout: float | None = None,
        state_dir: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientSettings:
        env = os.environ if environ is None else environ
        state = StateDir(Path(state_dir).absolute()) if state_dir else StateDir.from_env(dict(env))
        address = (
            gateway or env.get("SYNTHTASKS_GATEWAY_ADDRESS") or state.stack_info().get("gateway") or DEFAULT_GATEWAY
        )
        found_token = token or env.get("SYNTHTASKS_TOKEN") or state.admin_token()
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")

        def path(flag: str | None, setting: str) -> Path | None:
            value = flag or env.get(setting)
            return Path(value) if value else None

        return cls(
            address=address,
            token=found_token.strip() if found_token else None,
            tls_ca_file=path(tls_ca, "SYNTHTASKS_TLS_CA_FILE"),
            tls_cert_file=path(tls_cert, "SYNTHTASKS_TLS_CERT_FILE"),
            tls_key_file=path(tls_key, "SYNTHTASKS_TLS_KEY_FILE"),
            tls_system_roots=(
                tls_system_roots
                if tls_system_roots is not None
                else env.get("SYNTHTASKS_TLS_SYSTEM_ROOTS", "").lower() in ("1", "true", "yes")
            ),
            timeout=timeout,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


def open_channel(settings: ClientSettings) -> grpc.Channel:
    if settings.tls_ca_file is None and not settings.tls_system_roots:
        return grpc.insecure_channel(settings.address, options=_CHANNEL_OPTIONS)

    def read(path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read the TLS {what} {path}: {exc.strerror}") from None

    try:
        roots = root_certificates(settings.tls_ca_file, system_roots=settings.tls_system_roots)
    except OSError as exc:
        raise UsageError(f"cannot read the TLS CA file {settings.tls_ca_file}: {exc.strerror or exc}") from None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=roots,
        # A client certificate is only needed when the gateway asks for one (mTLS).
        private_key=read(settings.tls_key_file, "key file"),
        certificate_chain=read(settings.tls_cert_file, "certificate file"),
    )
    return grpc.secure_channel(settings.address, credentials, options=_CHANNEL_OPTIONS)


class GatewayClient:
    """Stubs of the four public services, sharing one channel and the bearer token."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._channel: grpc.Channel | None = None

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = open_channel(self.settings)
        return self._channel

    @property
    def providers(self) -> provider_service_pb2_grpc.ProviderServiceStub:
        return provider_service_pb2_grpc.ProviderServiceStub(self.channel)

    @property
    def tokens(self) -> token_service_pb2_grpc.TokenServiceStub:
        return token_service_pb2_grpc.TokenServiceStub(self.channel)

    @property
    def generation(self) -> generation_service_pb2_grpc.GenerationServiceStub:
        return generation_service_pb2_grpc.GenerationServiceStub(self.channel)

    @property
    def tasks(self) -> task_service_pb2_grpc.TaskServiceStub:
        return task_service_pb2_grpc.TaskServiceStub(self.channel)

    def _metadata(self) -> tuple[tuple[str, str], tuple[tuple[str, str], ...]]:
        # Our own request id, so a failed call can be found in the services' logs.
        request_id = uuid.uuid4().hex
        return (REQUEST_ID_KEY, request_id), (*self.settings.metadata(), (REQUEST_ID_KEY, request_id))

    def call(self, method: Callable[..., Any], request: Any, *, slow: bool = False) -> Any:
        """A unary call with the token and a deadline (longer for live provider checks)."""
        timeout = self.settings.timeout or (SLOW_TIMEOUT_SECONDS if slow else UNARY_TIMEOUT_SECONDS)
        (_, request_id), metadata = self._metadata()
        try:
            return method(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as exc:
            exc.request_id = request_id  # type: ignore[attr-defined]
            raise

    def stream(self, method: Callable[..., Any], request: Any, *, timeout: float | None = None) -> Iterator[Any]:
        """A server stream; no deadline unless given here or by --timeout (a job may run for hours)."""
        (_, request_id), metadata = self._metadata()
        try:
            yield from method(request, metadata=metadata, timeout=timeout or self.settings.timeout)
        except grpc.RpcError as exc:
            exc.request_id = request_id  # type: ignore[attr-defined]
            raise

    def pages(self, method: Callable[..., Any], request: Any, items: str, *, all_pages: bool = True) -> Iterator[Any]:
        """Every item of an AIP-158 list call, following `next_page_token`."""
        while True:
            reply = self.call(method, request)
            yield from getattr(reply, items)
            if not all_pages or not reply.next_page_token:
                return
            request.page_token = reply.next_page_token
