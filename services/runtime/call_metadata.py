"""A client interceptor that adds fixed metadata (a credential), the current request id,
the caller's identity and the trace context to every outgoing unary and server-streaming
call.

The caller's identity is the gateway's word on who made the public call: the token's
resource name (`tokens/{id}`, never its secret) and the project it acts in. Internal
services accept it only on calls that carry the internal credential, and use it for
their access logs and the audit trail."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import grpc

from services.runtime.json_logging import request_id_var
from services.runtime.tracing import trace_carrier

REQUEST_ID_KEY = "x-request-id"
CALLER_TOKEN_KEY = "x-synthtasks-caller-token"
CALLER_PROJECT_KEY = "x-synthtasks-caller-project"

# Who the current call is for: set by the gateway once it has authenticated the caller,
# and by internal services from the gateway's metadata.
caller_token_var: contextvars.ContextVar[str] = contextvars.ContextVar("caller_token", default="")
caller_project_var: contextvars.ContextVar[str] = contextvars.ContextVar("caller_project", default="")


def forwarded_metadata() -> list[tuple[str, str]]:
    """The request id, the caller's identity and the trace context (W3C `traceparent`,
    services/runtime/tracing.py), for calls made on behalf of this call."""
    pairs = [
        (REQUEST_ID_KEY, request_id_var.get()),
        (CALLER_TOKEN_KEY, caller_token_var.get()),
        (CALLER_PROJECT_KEY, caller_project_var.get()),
        *trace_carrier().items(),
    ]
    return [(key, value) for key, value in pairs if value]


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: grpc.ClientCallDetails, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
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
        return _CallDetails(details, (*(details.metadata or ()), *self._pairs, *forwarded_metadata()))

    def intercept_unary_unary(
        self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(client_call_details), request)
