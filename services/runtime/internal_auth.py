"""The internal credential: internal services accept calls only from the gateway and
the workers, which present a shared secret in metadata on every call."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

from services.runtime.interceptor import REQUEST_ID_KEY
from services.runtime.json_logging import request_id_var

INTERNAL_TOKEN_KEY = "x-synthtasks-internal-token"

# Probes and tooling must work without the secret; they expose nothing.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _deny(request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "this service accepts only internal calls")


class RequireInternalCredential(grpc.ServerInterceptor):
    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails) -> Any:
        if handler_call_details.method.startswith(_OPEN_PREFIXES):
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(INTERNAL_TOKEN_KEY, "")
        if hmac.compare_digest(presented.encode(), self._token):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is not None and handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_deny)
        return grpc.unary_unary_rpc_method_handler(_deny)


class _ClientCallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = base.compression


class AttachInternalCredential(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the internal token and the current request id to every outgoing call."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        metadata.append((INTERNAL_TOKEN_KEY, self._token))
        request_id = request_id_var.get()
        if request_id:
            metadata.append((REQUEST_ID_KEY, request_id))
        return _ClientCallDetails(details, metadata)

    def intercept_unary_unary(self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)
