"""The workers' SDK clients on both HTTP transports (aiohttp, the default, and httpx):
the same replies, and every failure classified the same, against real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from synthtasks.v1 import provider_service_pb2 as pb

from services.provider_access import FailureKind, ProviderEndpoint, async_client, classify
from synthtasks_fake_llm import FakeConfig, FakeOpenAIServer
from tests.leak_watch import new_key

TRANSPORTS = {"aiohttp": True, "httpx": False}
KEY = new_key()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(FakeConfig(api_keys={KEY})) as server:
        yield server


@pytest.fixture
def provider(fake: FakeOpenAIServer) -> FakeOpenAIServer:
    fake.configure(rate_429=0.0, rate_no_quota=0.0, rate_timeout=0.0, hang_seconds=30.0, retry_after_seconds=1.0)
    return fake


def _endpoint(base_url: str, *, kind: int = pb.PROVIDER_KIND_OPENAI, key: str = KEY) -> ProviderEndpoint:
    if kind == pb.PROVIDER_KIND_AZURE_OPENAI:
        return ProviderEndpoint(
            kind, endpoint=base_url, deployment="gpt4o-deploy", api_version="2024-06-01", api_key=key
        )
    return ProviderEndpoint(kind, endpoint=base_url + "/v1", model="gpt-4o-mini", api_key=key)


def _complete(endpoint: ProviderEndpoint, aiohttp: bool, *, timeout: float = 5.0):
    """One chat completion through `async_client`; the reply, or the classified failure."""

    async def call():
        client = async_client(endpoint, timeout=timeout, aiohttp=aiohttp)
        try:
            return await client.chat.completions.create(
                model=endpoint.model or endpoint.deployment, messages=[{"role": "user", "content": "One sentence."}]
            )
        except Exception as error:  # noqa: BLE001 - the classification is what is tested
            return classify(error, azure=endpoint.is_azure, secrets=[endpoint.api_key])
        finally:
            await client.close()

    return asyncio.run(call())


@pytest.fixture
def dropping_server() -> Iterator[str]:
    """Accepts a connection, reads the request and closes without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    thread.join(timeout=5)
    listener.close()


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", [pb.PROVIDER_KIND_OPENAI, pb.PROVIDER_KIND_AZURE_OPENAI])
def test_a_completion_comes_back_whole(provider, transport, kind) -> None:
    reply = _complete(_endpoint(provider.base_url, kind=kind), TRANSPORTS[transport])
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_refused_connection_is_unreachable_not_a_timeout(transport) -> None:
    failure = _complete(_endpoint(_closed_port_url()), TRANSPORTS[transport])
    assert failure.kind is FailureKind.ENDPOINT_UNREACHABLE
    assert failure.transient


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_dropped_connection_is_unreachable_not_a_timeout(dropping_server, transport) -> None:
    failure = _complete(_endpoint(dropping_server), TRANSPORTS[transport])
    assert failure.kind is FailureKind.ENDPOINT_UNREACHABLE
    assert failure.transient


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_reply_slower_than_the_timeout_is_a_timeout(provider, transport) -> None:
    provider.configure(rate_timeout=1.0, hang_seconds=5.0)
    failure = _complete(_endpoint(provider.base_url), TRANSPORTS[transport], timeout=0.3)
    assert failure.kind is FailureKind.TIMEOUT


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_429_is_rate_limited_with_its_retry_after(provider, transport) -> None:
    provider.configure(rate_429=1.0, retry_after_seconds=7.0)
    failure = _complete(_endpoint(provider.base_url), TRANSPORTS[transport])
    assert (failure.kind, failure.status_code, failure.retry_after) == (FailureKind.RATE_LIMITED, 429, 7.0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_429_for_exhausted_quota_is_not_a_rate_limit_and_ends_the_job(provider, transport) -> None:
    provider.configure(rate_no_quota=1.0)
    failure = _complete(_endpoint(provider.base_url), TRANSPORTS[transport])
    assert (failure.kind, failure.transient, failure.fails_whole_job) == (FailureKind.QUOTA_EXCEEDED, False, True)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_key_is_invalid_and_never_shown(provider, transport) -> None:
    wrong = new_key()
    failure = _complete(_endpoint(provider.base_url, key=wrong), TRANSPORTS[transport])
    assert failure.kind is FailureKind.INVALID_KEY
    assert wrong not in failure.message
