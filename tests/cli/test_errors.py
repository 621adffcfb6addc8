"""Every failure is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import io
import socket

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from synthtasks_cli.__main__ import run
from synthtasks_cli.errors import describe_rpc_error


class FakeRpcError(grpc.RpcError, grpc.Call):
    """A failed call as grpc hands it to the client: code, details, trailing metadata."""

    def __init__(self, code: grpc.StatusCode, message: str, *details) -> None:
        self._code = code
        self._message = message
        status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            status.details.add().Pack(detail)
        self._trailing = rpc_status.to_status(status).trailing_metadata if details else ()

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False


def info(reason: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain="synthtasks")


def bad_request(*violations: tuple[str, str]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations]
    )


def test_invalid_argument_shows_the_code_and_the_field_violations():
    error = FakeRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid argument: provider.endpoint: must be an http(s) URL with a host",
        info("INVALID_ARGUMENT"),
        bad_request(("provider.endpoint", "must be an http(s) URL with a host")),
    )
    assert describe_rpc_error(error) == "INVALID_ARGUMENT provider.endpoint: must be an http(s) URL with a host"


def test_several_violations_are_joined_on_one_line():
    error = FakeRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, "x", bad_request(("a", "is required"), ("b", "must be\nshort"))
    )
    assert describe_rpc_error(error) == "INVALID_ARGUMENT a: is required; b: must be short"


def test_the_error_info_reason_follows_the_message_when_it_adds_to_the_code():
    error = FakeRpcError(
        grpc.StatusCode.FAILED_PRECONDITION, "providers/x is assigned to projects/demo", info("PROVIDER_ASSIGNED")
    )
    assert (
        describe_rpc_error(error) == "FAILED_PRECONDITION providers/x is assigned to projects/demo (PROVIDER_ASSIGNED)"
    )


def test_unauthenticated_says_how_to_get_a_token():
    error = FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked token", info("TOKEN_UNKNOWN"))
    line = describe_rpc_error(error)
    assert line.startswith("UNAUTHENTICATED unknown or revoked token (TOKEN_UNKNOWN)")
    assert "--token" in line and "SYNTHTASKS_TOKEN" in line


def test_an_unreachable_gateway_says_where_and_what_to_do():
    error = FakeRpcError(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1"
    )
    line = describe_rpc_error(error, gateway="127.0.0.1:1")
    assert line == (
        "UNAVAILABLE cannot reach the gateway at 127.0.0.1:1 "
        "(is it running? start a local one with: synthtasks stack up)"
    )


def test_internal_errors_carry_the_request_id_to_find_in_the_logs():
    error = FakeRpcError(grpc.StatusCode.INTERNAL, "internal error; see the service log for this request id")
    error.request_id = "abc123"
    assert describe_rpc_error(error).endswith("[request id abc123]")


def test_a_rich_status_that_disagrees_with_the_call_is_ignored_not_raised():
    error = FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone", info("NOT_FOUND"))
    error._message = "something else"  # from_call raises on a mismatch
    assert describe_rpc_error(error) == "NOT_FOUND something else"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_command_against_no_gateway_prints_one_line_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTASKS_STATE_DIR", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    code = run(["--gateway", f"127.0.0.1:{free_port()}", "--timeout", "3", "providers", "list"], stdout=out, stderr=err)
    assert code == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: UNAVAILABLE cannot reach the gateway at 127.0.0.1:")


def test_a_usage_error_prints_one_line_and_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTASKS_STATE_DIR", str(tmp_path))
    err = io.StringIO()
    assert run(["providers", "update", "x"], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("error: nothing to update")


def test_an_unexpected_exception_is_one_line_without_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHTASKS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("SYNTHTASKS_DEBUG", raising=False)
    import synthtasks_cli.providers as providers_module

    def boom(ctx, args):
        raise RuntimeError("kaput")

    monkeypatch.setattr(providers_module, "list_providers", boom)
    err = io.StringIO()
    # The parser binds handlers when built, so patching the module attribute is enough.
    assert run(["providers", "list"], stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue() == "error: unexpected RuntimeError: kaput (set SYNTHTASKS_DEBUG=1 to see the traceback)\n"


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_a_non_positive_timeout_is_refused(timeout, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTASKS_STATE_DIR", str(tmp_path))
    err = io.StringIO()
    assert run(["--timeout", timeout, "providers", "list"], stdout=io.StringIO(), stderr=err) == 2
    assert "--timeout must be a positive number" in err.getvalue()


def test_an_unreadable_tls_ca_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHTASKS_STATE_DIR", str(tmp_path))
    err = io.StringIO()
    code = run(["--tls-ca", str(tmp_path / "missing.pem"), "providers", "list"], stdout=io.StringIO(), stderr=err)
    assert code == 2
    assert (
        err.getvalue() == f"error: cannot read the TLS CA file {tmp_path / 'missing.pem'}: No such file or directory\n"
    )
