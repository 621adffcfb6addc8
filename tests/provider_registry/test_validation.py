"""Live validation tells apart every outcome, for every provider kind, through the
gateway and the real openai SDK against the fake server."""

from __future__ import annotations

import socket

import pytest
from synthtasks.v1 import provider_service_pb2 as pb

from tests.leak_watch import new_key
from tests.provider_registry.builders import azure_provider, compatible_provider, openai_provider

KINDS = ["openai", "azure", "compatible"]


def build(kind: str, fake, key: str, **overrides) -> pb.Provider:
    makers = {"openai": openai_provider, "azure": azure_provider, "compatible": compatible_provider}
    return makers[kind](fake, key, **overrides)


def run_check(stack, provider: pb.Provider) -> pb.ValidationResult:
    return stack.admin().providers.TestProviderConnection(pb.TestProviderConnectionRequest(provider=provider)).result


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("kind", KINDS)
def test_valid_credentials_are_reported_valid(stack, fake_llm, kind):
    key = new_key()
    fake_llm.configure(api_keys={key})
    result = run_check(stack, build(kind, fake_llm, key))
    assert result.state == pb.VALIDATION_STATE_VALID, result.message
    assert result.latency.ToNanoseconds() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_key_is_reported_as_invalid_key_without_echoing_it(stack, fake_llm, kind):
    fake_llm.configure(api_keys={new_key()}, echo_key_in_errors=True)
    wrong = new_key()
    result = run_check(stack, build(kind, fake_llm, wrong))
    assert result.state == pb.VALIDATION_STATE_INVALID_KEY
    assert wrong not in result.message
    assert result.message


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_endpoint_is_reported_as_unreachable(stack, fake_llm, kind):
    provider = build(kind, fake_llm, new_key())
    port = closed_port()
    provider.endpoint = f"http://127.0.0.1:{port}" + ("" if kind == "azure" else "/v1")
    result = run_check(stack, provider)
    assert result.state == pb.VALIDATION_STATE_ENDPOINT_UNREACHABLE, result.message


def test_an_unknown_azure_deployment_is_reported_as_deployment_not_found(stack, fake_llm):
    key = new_key()
    fake_llm.configure(api_keys={key})
    result = run_check(stack, azure_provider(fake_llm, key, deployment="no-such-deployment"))
    assert result.state == pb.VALIDATION_STATE_DEPLOYMENT_NOT_FOUND, result.message


@pytest.mark.parametrize("kind", ["openai", "compatible"])
def test_an_unknown_model_is_reported_as_model_not_found(stack, fake_llm, kind):
    key = new_key()
    fake_llm.configure(api_keys={key})
    result = run_check(stack, build(kind, fake_llm, key, model="no-such-model"))
    assert result.state == pb.VALIDATION_STATE_MODEL_NOT_FOUND, result.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_limited_provider_is_reported_as_rate_limited(stack, fake_llm, kind):
    key = new_key()
    fake_llm.configure(api_keys={key}, rate_429=1.0, faults_on_models=True)
    result = run_check(stack, build(kind, fake_llm, key))
    assert result.state == pb.VALIDATION_STATE_RATE_LIMITED, result.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_provider_that_does_not_answer_in_time_is_reported_as_timeout(stack, fake_llm, kind):
    key = new_key()
    fake_llm.configure(api_keys={key}, rate_timeout=1.0, hang_seconds=10, faults_on_models=True)
    result = run_check(stack, build(kind, fake_llm, key))
    assert result.state == pb.VALIDATION_STATE_TIMEOUT, result.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_is_reported_as_error_with_the_providers_message(stack, fake_llm, kind):
    key = new_key()
    fake_llm.configure(api_keys={key}, rate_500=1.0, faults_on_models=True)
    result = run_check(stack, build(kind, fake_llm, key))
    assert result.state == pb.VALIDATION_STATE_ERROR
    assert result.message


def test_validating_a_saved_provider_stores_the_result_and_its_time(stack, fake_llm):
    key = new_key()
    fake_llm.configure(api_keys={key})
    admin = stack.admin()
    created = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=openai_provider(fake_llm, key))).provider
    assert not created.HasField("last_validation")

    reply = admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=created.name))
    assert reply.result.state == pb.VALIDATION_STATE_VALID
    stored = admin.providers.GetProvider(pb.GetProviderRequest(name=created.name)).provider
    assert stored.last_validation.state == pb.VALIDATION_STATE_VALID
    assert stored.last_validation.validate_time.seconds > 0

    fake_llm.configure(api_keys={new_key()})
    reply = admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=created.name))
    assert reply.result.state == pb.VALIDATION_STATE_INVALID_KEY
    assert reply.provider.last_validation.state == pb.VALIDATION_STATE_INVALID_KEY


def test_validate_first_refuses_to_save_a_failing_credential(stack, fake_llm):
    import grpc

    fake_llm.configure(api_keys={new_key()})
    admin = stack.admin()
    provider = openai_provider(fake_llm, new_key())
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.CreateProvider(pb.CreateProviderRequest(provider=provider, validate_first=True))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "INVALID_KEY" in raised.value.details()
    names = {p.display_name for p in admin.providers.ListProviders(pb.ListProvidersRequest(page_size=1000)).providers}
    assert provider.display_name not in names


def test_validate_first_saves_a_working_credential_with_its_validation(stack, fake_llm):
    key = new_key()
    fake_llm.configure(api_keys={key})
    reply = stack.admin().providers.CreateProvider(
        pb.CreateProviderRequest(provider=azure_provider(fake_llm, key), validate_first=True)
    )
    assert reply.validation.state == pb.VALIDATION_STATE_VALID
    assert reply.provider.last_validation.state == pb.VALIDATION_STATE_VALID
