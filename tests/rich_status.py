"""Reading the rich status (ErrorInfo reason, BadRequest field violations, QuotaFailure
with RetryInfo) of a failed call, as the tests assert it. Services only write rich
statuses; the CLI reads its own."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def error_info_reason(error: grpc.RpcError) -> str | None:
    """The ErrorInfo reason of a failed call, if the server sent one."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return None


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations of a failed call, as (field, description)."""
    status = rpc_status.from_call(error)
    found: list[tuple[str, str]] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.extend((v.field, v.description) for v in request.field_violations)
    return found


def quota_failure(error: grpc.RpcError) -> tuple[list[tuple[str, str]], float | None]:
    """The QuotaFailure violations (subject, description) of a failed call and its
    RetryInfo delay in seconds (None without one)."""
    status = rpc_status.from_call(error)
    violations: list[tuple[str, str]] = []
    delay: float | None = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            failure = error_details_pb2.QuotaFailure()
            detail.Unpack(failure)
            violations.extend((v.subject, v.description) for v in failure.violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToTimedelta().total_seconds()
    return violations, delay
