"""Errors the CLI reports, and the one-line rendering of a failed gRPC call.

    CliError            (root: printed as one `error: …` line, exits with `exit_code`)
    ├── UsageError      bad flags or arguments the parser could not catch (exit 2)
    ├── SetupError      the machine is not ready: Postgres down, port taken, package missing (exit 2)
    ├── StreamLost      a job's watch stream kept ending before the job did
    ├── JobStalled      a followed job stopped making progress
    └── Interrupted     Ctrl-C where stopping early needs a word of explanation (exit 130)

A `grpc.RpcError` reaching the top is rendered by `describe_rpc_error` (exit 1).
Nothing here may print a secret: messages go to terminals and CI logs.
"""

from __future__ import annotations

import grpc
from grpc_status import rpc_status

from services.runtime.status import reason_and_violations


class CliError(Exception):
    """Raised when a command cannot do what was asked; the message is the whole story."""

    exit_code = 1


class UsageError(CliError):
    """Raised when the arguments are inconsistent (e.g. `update` without a field to change)."""

    exit_code = 2


class SetupError(CliError):
    """Raised when something outside the CLI must be fixed first; the message says how."""

    exit_code = 2


class StreamLost(CliError):
    """Raised when WatchGenerationJob keeps ending while the job still runs."""


class JobStalled(CliError):
    """Raised when a job being followed has not changed for longer than allowed."""


class Interrupted(CliError):
    """Raised on Ctrl-C when the user should know what goes on without them."""

    exit_code = 130


def rpc_details(error: grpc.RpcError) -> tuple[str | None, list[tuple[str, str]]]:
    """The ErrorInfo reason and BadRequest field violations of a failed call.

    Reads the rich status the gateway sends (`grpc-status-details-bin`); a call that
    failed before reaching a server (no trailing metadata) has neither."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]  # a failed call's error is its grpc.Call too
    except (ValueError, AttributeError):
        # from_call raises when the rich status disagrees with the call's own code.
        return None, []
    return reason_and_violations(status)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_rpc_error(error: grpc.RpcError, *, gateway: str = "") -> str:
    """`INVALID_ARGUMENT provider.endpoint: must be an http(s) URL with a host` and the like.

    The code comes first, then the field violations when there are any (they say more
    than the message), else the server's message; the ErrorInfo reason is appended
    when it adds something to the code."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    code_name = code.name if code is not None else "UNKNOWN"
    details = error.details() if callable(getattr(error, "details", None)) else ""
    reason, violations = rpc_details(error)
    if violations:
        text = "; ".join(f"{field}: {description}" for field, description in violations)
    elif code == grpc.StatusCode.UNAVAILABLE and not reason:
        # The transport's own message ("failed to connect to all addresses; last error: …")
        # is long and says nothing the user can act on.
        where = f" at {gateway}" if gateway else ""
        text = f"cannot reach the gateway{where} (is it running? start a local one with: synthtasks stack up)"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED and not reason:
        text = "the call took longer than its deadline (raise it with --timeout SECONDS)"
    else:
        text = details or ""
    line = f"{code_name} {text}".strip()
    if reason and reason != code_name:
        line += f" ({reason})"
    request_id = getattr(error, "request_id", None)
    if request_id and code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        line += f" [request id {request_id}]"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        line += "; pass --token, set SYNTHTASKS_TOKEN, or run `synthtasks stack up` here to get an admin token"
    return _one_line(line)
