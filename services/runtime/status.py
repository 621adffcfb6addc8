"""Rich gRPC statuses: `google.rpc.Status` with one ErrorInfo reason, plus BadRequest
field violations for invalid input, and QuotaFailure (with RetryInfo when waiting
helps) for refused quotas."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.runtime.errors import InvalidArgument, ResourceExhausted, ServiceError

ERROR_DOMAIN = "synthtasks"
_DETAILS_KEY = "grpc-status-details-bin"
# Replies stay small whatever the input: the message and every field violation are cut
# to these lengths (sites quote only a short prefix of a bad value already; this holds
# for any message, e.g. a template error that repeats a long placeholder).
MAX_MESSAGE_CHARS = 900
MAX_DESCRIPTION_CHARS = 300
MAX_FIELD_CHARS = 120


@dataclass(frozen=True)
class PassthroughStatus(grpc.Status):
    """A downstream status re-sent unchanged (code, message and rich details)."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def status_for(error: ServiceError) -> grpc.Status:
    detail = status_pb2.Status(code=error.code.value[0], message=_bounded(error.message, MAX_MESSAGE_CHARS))
    detail.details.add().Pack(error_details_pb2.ErrorInfo(reason=str(error.reason), domain=ERROR_DOMAIN))
    if isinstance(error, InvalidArgument):
        detail.details.add().Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=_bounded(v.field, MAX_FIELD_CHARS),
                        description=_bounded(v.description, MAX_DESCRIPTION_CHARS),
                    )
                    # Every violation is named in the message too; a few say enough.
                    for v in error.violations[:10]
                ]
            )
        )
    if isinstance(error, ResourceExhausted):
        detail.details.add().Pack(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(subject=v.subject, description=v.description)
                    for v in error.violations
                ]
            )
        )
        if error.retry_after_seconds is not None:
            retry = error_details_pb2.RetryInfo()
            retry.retry_delay.FromMilliseconds(max(1, round(error.retry_after_seconds * 1000)))
            detail.details.add().Pack(retry)
    return rpc_status.to_status(detail)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def passthrough_status(error: grpc.RpcError) -> grpc.Status:
    """The status a downstream call failed with, to be returned to our own caller."""
    # grpc's stubs call the items _Metadatum; at run time they are (key, value) tuples.
    metadata: tuple[tuple[str, bytes], ...] = error.trailing_metadata() or ()  # type: ignore[assignment]
    trailing = tuple((key, value) for key, value in metadata if key == _DETAILS_KEY)
    return PassthroughStatus(error.code(), error.details() or "", trailing)


def reason_and_violations(status: status_pb2.Status | None) -> tuple[str | None, list[tuple[str, str]]]:
    """What clients show of a rich status: its ErrorInfo reason and its BadRequest field
    violations as (field, description); (None, []) without a status."""
    reason: str | None = None
    violations: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = reason or info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.extend((v.field, v.description) for v in bad.field_violations)
    return reason, violations
