"""Provider endpoints an operator may forbid (private, loopback, link-local), live checks
that never follow redirects, and unexpected answers reported without Python internals."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import grpc
import pytest
from cryptography.fernet import Fernet
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2_grpc

from services.provider_registry.config import Settings as RegistrySettings
from services.provider_registry.server import build_server
from services.runtime.channels import internal_channel
from tests.provider_registry.builders import compatible_provider
from tests.rich_status import error_info_reason, field_violations


@pytest.fixture(scope="module")
def strict_registry(make_database) -> Iterator[provider_service_pb2_grpc.ProviderServiceStub]:
    """A registry that refuses private endpoints, called directly with the internal credential."""
    settings = RegistrySettings(
        internal_token="policy-test",
        master_keys=Fernet.generate_key().decode(),
        database_url=make_database("policy"),
        metrics_port=0,
        validation_timeout_seconds=3,
        allow_private_endpoints=False,
    )
    server = build_server(settings, "127.0.0.1:0")
    with internal_channel(f"127.0.0.1:{server.port}", settings) as channel:
        yield provider_service_pb2_grpc.ProviderServiceStub(channel)
    server.stop(0)


def _compatible(endpoint: str) -> pb.Provider:
    return pb.Provider(
        display_name=f"Policy {endpoint}"[:90],
        kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        endpoint=endpoint,
        model="gpt-4o-mini",
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/v1",
        "http://127.0.0.1:8080/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.10/v1",
        "http://[::1]:8000/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://localhost:8000/v1",
    ],
)
def test_a_private_endpoint_is_refused_when_the_operator_forbids_them(strict_registry, endpoint):
    with pytest.raises(grpc.RpcError) as raised:
        strict_registry.CreateProvider(pb.CreateProviderRequest(provider=_compatible(endpoint)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info_reason(raised.value) == "ENDPOINT_NOT_ALLOWED"
    assert [f for f, _ in field_violations(raised.value)] == ["provider.endpoint"]


def test_a_public_endpoint_is_accepted_under_the_same_rule(strict_registry):
    # An address literal: saving it sends no traffic (no validate_first).
    created = strict_registry.CreateProvider(pb.CreateProviderRequest(provider=_compatible("https://93.184.215.14/v1")))
    assert created.provider.endpoint == "https://93.184.215.14/v1"


def test_a_live_check_of_a_forbidden_endpoint_makes_no_call(strict_registry, fake_llm):
    fake_llm.reset_stats()
    result = strict_registry.TestProviderConnection(
        pb.TestProviderConnectionRequest(provider=_compatible(fake_llm.openai_base_url))
    ).result
    assert result.state == pb.VALIDATION_STATE_ENDPOINT_UNREACHABLE
    assert "private" in result.message
    assert fake_llm.stats().requests_by_route == {}


def test_private_endpoints_are_allowed_by_default_for_local_development(stack, fake_llm):
    result = (
        stack.admin()
        .providers.TestProviderConnection(pb.TestProviderConnectionRequest(provider=compatible_provider(fake_llm)))
        .result
    )
    assert result.state == pb.VALIDATION_STATE_VALID


class _OddHandler(http.server.BaseHTTPRequestHandler):
    server: _OddServer

    def do_GET(self) -> None:
        payload = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        """Quiet: the suite's log capture is for the services."""


class _OddServer(http.server.ThreadingHTTPServer):
    """A loopback HTTP server answering every GET with `status` and `body` (and a
    Location header for redirects): an endpoint that is not an OpenAI API."""

    def __init__(self, status: int, body: object, location: str = "") -> None:
        self.status, self.body, self.location = status, body, location
        super().__init__(("127.0.0.1", 0), _OddHandler)

    def __enter__(self) -> str:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def test_a_live_check_does_not_follow_a_redirect(stack, fake_llm):
    admin = stack.admin()
    fake_llm.reset_stats()
    with _OddServer(302, {}, location=f"{fake_llm.openai_base_url}/models") as redirecting:
        result = admin.providers.TestProviderConnection(
            pb.TestProviderConnectionRequest(provider=compatible_provider(fake_llm, endpoint=redirecting))
        ).result

    assert result.state != pb.VALIDATION_STATE_VALID
    assert "redirect" in result.message
    assert fake_llm.stats().requests_by_route == {}, "the redirect's target was never called"


@pytest.mark.parametrize("body", ["just a string", {"data": "not a list"}, {"data": [1, 2]}, [None]])
def test_an_unexpected_answer_is_reported_without_python_internals(stack, fake_llm, body):
    with _OddServer(200, body) as odd:
        result = (
            stack.admin()
            .providers.TestProviderConnection(
                pb.TestProviderConnectionRequest(provider=compatible_provider(fake_llm, endpoint=odd))
            )
            .result
        )
    assert result.state == pb.VALIDATION_STATE_ERROR
    assert "OpenAI API" in result.message
    for internal in ("Error:", "object has no attribute", "Traceback", "NoneType"):
        assert internal not in result.message
