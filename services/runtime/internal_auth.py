"""The internal credential: internal services accept calls only from the gateway and
the workers, which present a shared secret in metadata on every call."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

from services.runtime.call_metadata import AttachMetadata

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
        # Only a text (non "-bin") key can carry the token.
        if isinstance(presented, str) and hmac.compare_digest(presented.encode(), self._token):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is not None and handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_deny)
        return grpc.unary_unary_rpc_method_handler(_deny)


def attach_internal_credential(token: str) -> AttachMetadata:
    """The client side: what the gateway and workers add to every internal call."""
    return AttachMetadata([(INTERNAL_TOKEN_KEY, token)])
