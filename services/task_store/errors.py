"""Errors of the task store beyond the shared ones (services.runtime.errors).

ServiceError
└── Unimplemented       UNIMPLEMENTED: an RPC of a shared service that another service serves
"""

from __future__ import annotations

import grpc

from services.runtime.errors import ServiceError
from services.vocabulary.reasons import Reason


class Unimplemented(ServiceError):
    """Raised when a public RPC is served elsewhere (jobs are created by the gateway)."""

    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = Reason.UNIMPLEMENTED
