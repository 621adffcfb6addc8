"""A client interceptor that adds fixed metadata (a credential) and the current request
id to every outgoing unary and server-streaming call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.runtime.json_logging import request_id_var

REQUEST_ID_KEY = "x-request-id"


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = base.compression


class AttachMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), *self._pairs]
        request_id = request_id_var.get()
        if request_id:
            metadata.append((REQUEST_ID_KEY, request_id))
        return _CallDetails(details, metadata)

    def intercept_unary_unary(
        self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)


def bearer(token: str) -> AttachMetadata:
    """The public API's credential: `authorization: Bearer <token>`."""
    return AttachMetadata([("authorization", f"Bearer {token}")])
