"""Every ErrorInfo reason a synthtasks service sends (domain `synthtasks`).

Clients branch on these strings, so they are one enum: a reason not listed here is
never sent (tests/vocabulary/test_reasons.py checks every `reason=` in services/).
The default reason of each error class (services.runtime.errors) is listed too."""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # Defaults of the error classes: the status code says it all.
    ERROR = "ERROR"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ETAG_MISMATCH = "ETAG_MISMATCH"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    UNIMPLEMENTED = "UNIMPLEMENTED"

    # Who is calling (gateway).
    TOKEN_MISSING = "TOKEN_MISSING"
    TOKEN_UNKNOWN = "TOKEN_UNKNOWN"
    ADMIN_REQUIRED = "ADMIN_REQUIRED"
    PROJECT_NOT_ALLOWED = "PROJECT_NOT_ALLOWED"
    # Too many failed authentications from one client address.
    AUTH_FAILURES_RATE_LIMITED = "AUTH_FAILURES_RATE_LIMITED"

    # Quotas and stream bounds (RESOURCE_EXHAUSTED with a QuotaFailure).
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"

    # Providers, assignments and tokens (registry).
    PROVIDER_EXISTS = "PROVIDER_EXISTS"
    DISPLAY_NAME_TAKEN = "DISPLAY_NAME_TAKEN"
    PROVIDER_NOT_FOUND = "PROVIDER_NOT_FOUND"
    PROVIDER_ASSIGNED = "PROVIDER_ASSIGNED"
    ASSIGNMENT_NOT_FOUND = "ASSIGNMENT_NOT_FOUND"
    TOKEN_NOT_FOUND = "TOKEN_NOT_FOUND"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    ENDPOINT_NOT_ALLOWED = "ENDPOINT_NOT_ALLOWED"
    # A stored API key no longer decrypts with the configured master keys.
    PROVIDER_KEY_UNREADABLE = "PROVIDER_KEY_UNREADABLE"

    # Jobs (gateway and task store).
    PROVIDER_NOT_ASSIGNED = "PROVIDER_NOT_ASSIGNED"
    NO_DEFAULT_PROVIDER = "NO_DEFAULT_PROVIDER"
    # The job names a model the provider does not allow.
    MODEL_NOT_ALLOWED = "MODEL_NOT_ALLOWED"
    JOB_ALREADY_ENDED = "JOB_ALREADY_ENDED"
    # AIP-155: a request_id already used for a different request.
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"

    # Staged texts and tasks (task store).
    STAGED_TEXT_IMPORTED = "STAGED_TEXT_IMPORTED"
    STAGED_TEXT_DISCARDED = "STAGED_TEXT_DISCARDED"
    SYNTHETIC_TAG_REQUIRED = "SYNTHETIC_TAG_REQUIRED"

    # A dependency (the database, Redis) is down or restarting; retry.
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"
