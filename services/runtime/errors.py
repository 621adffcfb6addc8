"""Domain errors that every service raises and one interceptor turns into gRPC statuses.

    ServiceError                     (root; never raised itself)
    ├── InvalidArgument              INVALID_ARGUMENT + BadRequest field violations
    ├── NotFound                     NOT_FOUND
    ├── AlreadyExists                ALREADY_EXISTS
    ├── FailedPrecondition           FAILED_PRECONDITION
    ├── Aborted                      ABORTED (stale etag, lost race)
    ├── PermissionDenied             PERMISSION_DENIED
    ├── Unauthenticated              UNAUTHENTICATED
    ├── ResourceExhausted            RESOURCE_EXHAUSTED + QuotaFailure (+ RetryInfo)
    └── Unavailable                  UNAVAILABLE

Each carries one machine-readable `reason` (the ErrorInfo reason), a member of
services.vocabulary.reasons.Reason: the one list of reasons clients may branch on.
Messages must never contain a secret (they go to callers and to logs) and quote at
most a short prefix of a caller's value (services.vocabulary.quoting).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.vocabulary.reasons import Reason


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class ServiceError(Exception):
    """Root of the errors a service raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = Reason.ERROR

    def __init__(self, message: str, *, reason: Reason | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Reason(...) refuses a string that is not listed, so no unlisted reason is ever sent.
        self.reason = Reason(reason or self.default_reason)


class InvalidArgument(ServiceError):
    """Raised when a request field is malformed or out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = Reason.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation], *, reason: Reason | None = None) -> None:
        self.violations = violations
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid argument: {summary}", reason=reason)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(ServiceError):
    """Raised when a named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = Reason.NOT_FOUND


class AlreadyExists(ServiceError):
    """Raised when a resource with the same id or unique field exists."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = Reason.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    """Raised when the system is not in a state that allows the call."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = Reason.FAILED_PRECONDITION


class Aborted(ServiceError):
    """Raised when a concurrent change won (stale etag)."""

    code = grpc.StatusCode.ABORTED
    default_reason = Reason.ETAG_MISMATCH


class PermissionDenied(ServiceError):
    """Raised when the caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = Reason.PERMISSION_DENIED


class Unauthenticated(ServiceError):
    """Raised when the caller presented no valid credential."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = Reason.UNAUTHENTICATED


@dataclass(frozen=True)
class QuotaViolation:
    # Whose quota: `projects/{project}`, `tokens/{token}` or `clients/{address}`.
    subject: str
    # Which quota, and by how much the call would go past it.
    description: str


class ResourceExhausted(ServiceError):
    """Raised when a call would go past a quota or a concurrency limit; nothing was done."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = Reason.QUOTA_EXCEEDED

    def __init__(
        self,
        message: str,
        violations: list[QuotaViolation],
        *,
        retry_after_seconds: float | None = None,
        reason: Reason | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = violations
        # Set only where waiting helps (a rate window that slides); None: free something first.
        self.retry_after_seconds = retry_after_seconds


class Unavailable(ServiceError):
    """Raised when a dependency cannot be reached; callers may retry."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = Reason.UNAVAILABLE
