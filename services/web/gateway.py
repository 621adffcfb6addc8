"""The web app's link to the gateway: one asyncio channel, the user's token on each call.

Failed calls become `GatewayError`, which carries what a page needs to explain the
failure: the status code, the server's message, its ErrorInfo reason and the
BadRequest field violations (keyed by field path, to sit next to form fields)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import status_pb2
from synthtasks.v1 import (
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)

from services.runtime.channels import root_certificates
from services.runtime.status import reason_and_violations
from services.web.config import Settings

REQUEST_ID_KEY = "x-request-id"
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
# No client keepalive pings: servers answer frequent pings on quiet connections with
# GOAWAY, which would cut long, quiet watch streams.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 32 * 1024 * 1024)]


class GatewayError(Exception):
    """Raised when a gateway call fails; `describe()` is safe to show on a page."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        field_errors: dict[str, str] | None = None,
        request_id: str = "",
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.field_errors = field_errors or {}
        self.request_id = request_id

    def describe(self) -> str:
        if self.code == grpc.StatusCode.UNAVAILABLE and not self.reason:
            return "The synthtasks gateway cannot be reached right now. Try again in a moment."
        if self.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return "The gateway took too long to answer. Try again."
        if self.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            return f"Something went wrong on the server (request id {self.request_id})."
        return self.message or self.code.name.replace("_", " ").capitalize()


def _rich_details(error: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    reason = ""
    field_errors: dict[str, str] = {}
    for key, value in error.trailing_metadata() or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        found, violations = reason_and_violations(status_pb2.Status.FromString(value))
        reason = reason or found or ""
        for field, description in violations:
            field_errors.setdefault(field, description)
    return reason, field_errors


def gateway_error(error: grpc.aio.AioRpcError, request_id: str) -> GatewayError:
    reason, field_errors = _rich_details(error)
    return GatewayError(
        error.code(), error.details() or "", reason=reason, field_errors=field_errors, request_id=request_id
    )


class Gateway:
    """Stubs of the public API over one channel; the channel is opened on the serving loop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channel: grpc.aio.Channel | None = None

    def open(self) -> None:
        settings = self._settings
        # TLS like every client of the gateway: a CA file, the system's roots, or both.
        roots = root_certificates(settings.tls_ca_file, system_roots=settings.tls_system_roots)
        if roots is None:
            self._channel = grpc.aio.insecure_channel(settings.gateway_address, options=_CHANNEL_OPTIONS)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=roots,
                private_key=settings.tls_key_file.read_bytes() if settings.tls_key_file else None,
                certificate_chain=settings.tls_cert_file.read_bytes() if settings.tls_cert_file else None,
            )
            self._channel = grpc.aio.secure_channel(settings.gateway_address, credentials, options=_CHANNEL_OPTIONS)
        self.providers = provider_service_pb2_grpc.ProviderServiceStub(self._channel)
        self.tokens = token_service_pb2_grpc.TokenServiceStub(self._channel)
        self.generation = generation_service_pb2_grpc.GenerationServiceStub(self._channel)
        self.tasks = task_service_pb2_grpc.TaskServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            raise RuntimeError("the gateway channel is not open")
        return self._channel

    @staticmethod
    def _metadata(token: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        # Our own request id, so a failure shown on a page can be found in the services' logs.
        request_id = uuid.uuid4().hex
        return request_id, (("authorization", f"Bearer {token}"), (REQUEST_ID_KEY, request_id))

    async def call(self, method: Callable[..., Any], request: Any, token: str, *, slow: bool = False) -> Any:
        request_id, metadata = self._metadata(token)
        timeout = self._settings.slow_timeout_seconds if slow else self._settings.timeout_seconds
        try:
            return await method(request, metadata=metadata, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise gateway_error(error, request_id) from None

    async def stream(self, method: Callable[..., Any], request: Any, token: str) -> AsyncIterator[Any]:
        """A server stream without a deadline (jobs may run for hours); cancelled when the
        consumer stops iterating (the browser went away)."""
        request_id, metadata = self._metadata(token)
        call = method(request, metadata=metadata)
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as error:
            raise gateway_error(error, request_id) from None
        finally:
            call.cancel()
