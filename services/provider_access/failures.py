"""What went wrong when calling a provider, told apart from the SDK's exceptions.

Transient failures (rate limited, timeouts, 5xx, connection errors) are worth retrying;
permanent ones (bad key, unknown deployment or model, content filter, bad request) are
not. Every message is redacted: some providers echo the presented key in their errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai

_MAX_MESSAGE = 500


class FailureKind(enum.Enum):
    INVALID_KEY = "invalid_key"
    ENDPOINT_UNREACHABLE = "endpoint_unreachable"
    DEPLOYMENT_NOT_FOUND = "deployment_not_found"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    TIMEOUT = "timeout"
    CONTENT_FILTERED = "content_filtered"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    BAD_RESPONSE = "bad_response"
    ERROR = "error"


_TRANSIENT = {
    FailureKind.RATE_LIMITED,
    FailureKind.TIMEOUT,
    FailureKind.SERVER_ERROR,
    FailureKind.ENDPOINT_UNREACHABLE,
}
# Failures that hold for every call of the job, not just this one: the job stops at once.
_FAILS_WHOLE_JOB = {
    FailureKind.INVALID_KEY,
    FailureKind.DEPLOYMENT_NOT_FOUND,
    FailureKind.MODEL_NOT_FOUND,
    FailureKind.QUOTA_EXCEEDED,
}


@dataclass(frozen=True)
class ProviderFailure:
    kind: FailureKind
    message: str
    status_code: int | None = None
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return self.kind in _TRANSIENT

    @property
    def fails_whole_job(self) -> bool:
        return self.kind in _FAILS_WHOLE_JOB


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """`text` with every occurrence of each non-trivial secret replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _provider_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(error.message)


def _error_code(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("code") is not None:
            return str(inner["code"])
    return ""


def _retry_after(error: openai.APIStatusError) -> float | None:
    headers = error.response.headers
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    if "retry-after" in headers:
        try:
            return float(headers["retry-after"])
        except ValueError:
            return None  # an HTTP date: rare from LLM APIs, the caller's backoff applies
    return None


def classify(error: Exception, *, azure: bool, secrets: list[str] | tuple[str, ...] = ()) -> ProviderFailure:
    """Turn an SDK exception into a ProviderFailure with a redacted, bounded message."""

    def failure(kind: FailureKind, message: str, **extra: Any) -> ProviderFailure:
        return ProviderFailure(kind, redact(message, secrets)[:_MAX_MESSAGE], **extra)

    connection_error = _aiohttp_connection_error(error)
    if connection_error is not None:
        return failure(FailureKind.ENDPOINT_UNREACHABLE, f"cannot connect to the provider: {connection_error}")
    if isinstance(error, openai.APITimeoutError):
        return failure(FailureKind.TIMEOUT, "the provider did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return failure(FailureKind.ENDPOINT_UNREACHABLE, f"cannot connect to the provider: {cause}")
    if isinstance(error, openai.APIStatusError):
        message = _provider_message(error)
        code = _error_code(error)
        status = error.status_code
        if status in (401, 403):
            return failure(FailureKind.INVALID_KEY, message, status_code=status)
        if status == 404:
            if azure and (code == "DeploymentNotFound" or "deployment" in message.lower()):
                return failure(FailureKind.DEPLOYMENT_NOT_FOUND, message, status_code=status)
            if code == "model_not_found" or "model" in message.lower() or not azure:
                return failure(FailureKind.MODEL_NOT_FOUND, message, status_code=status)
            return failure(FailureKind.ERROR, message, status_code=status)
        if status == 429 and code == "insufficient_quota":
            # Out of credit: a 429 too, but no wait will help.
            return failure(FailureKind.QUOTA_EXCEEDED, message, status_code=status)
        if 300 <= status < 400:
            # Redirects are never followed (a provider must not steer calls elsewhere).
            return failure(
                FailureKind.BAD_REQUEST,
                f"the endpoint answered with a redirect (HTTP {status}); configure the URL it redirects to",
                status_code=status,
            )
        if status == 429:
            return failure(FailureKind.RATE_LIMITED, message, status_code=status, retry_after=_retry_after(error))
        if status >= 500:
            return failure(FailureKind.SERVER_ERROR, message, status_code=status, retry_after=_retry_after(error))
        if code == "content_filter":
            return failure(FailureKind.CONTENT_FILTERED, message, status_code=status)
        return failure(FailureKind.BAD_REQUEST, message, status_code=status)
    if isinstance(
        error, (openai.APIResponseValidationError, ValueError, KeyError, TypeError, AttributeError, IndexError)
    ):
        # The SDK parsed an answer that is not the OpenAI API's (an HTML page, a string, a
        # different JSON): say so, without the Python error that tripped over it.
        return failure(
            FailureKind.BAD_RESPONSE,
            "the provider's answer is not what the OpenAI API returns; is the endpoint the API's base URL?",
        )
    # Unknown: the type names the failure; its text may hold anything, so it stays in the log.
    return failure(FailureKind.ERROR, f"the call to the provider failed unexpectedly ({type(error).__name__})")


def _aiohttp_connection_error(error: Exception) -> aiohttp.ClientConnectionError | None:
    """The connection failure behind an SDK error raised through the aiohttp transport.

    That transport reports every aiohttp connection error (refused, reset, dropped) as a
    timeout; only aiohttp's own timeout errors really are one."""
    cause = error.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError):
            return None if isinstance(cause, aiohttp.ServerTimeoutError) else cause
        cause = cause.__cause__
    return None
