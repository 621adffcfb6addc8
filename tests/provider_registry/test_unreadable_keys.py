"""A stored key that no configured master key decrypts (the master key was replaced
without rotating): callers get FAILED_PRECONDITION saying so, not INTERNAL, and the
jobs of that provider fail with the reason instead of running forever."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from cryptography.fernet import Fernet
from synthtasks.internal.v1 import credential_service_pb2 as credential_pb
from synthtasks.internal.v1 import credential_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2_grpc

from services.provider_registry.config import Settings as RegistrySettings
from services.provider_registry.server import build_server
from services.runtime.channels import internal_channel
from tests.jobs_harness import log_dir_for, started_workers
from tests.rich_status import error_info_reason


@pytest.fixture(scope="module")
def wrong_key_registry(stack) -> Iterator[str]:
    """A second registry on the stack's database whose only master key is a new one."""
    settings = RegistrySettings(
        internal_token=stack.registry_settings.internal_token,
        master_keys=Fernet.generate_key().decode(),
        database_url=stack.registry_settings.database_url,
        metrics_port=0,
        validation_timeout_seconds=3,
    )
    server = build_server(settings, "127.0.0.1:0")
    yield f"127.0.0.1:{server.port}"
    server.stop(0)


def test_validating_a_provider_whose_key_cannot_be_decrypted_is_failed_precondition(
    generation, stack, wrong_key_registry
):
    provider = generation.provider(generation.new_project())
    with internal_channel(wrong_key_registry, stack.registry_settings) as channel:
        providers = provider_service_pb2_grpc.ProviderServiceStub(channel)
        credentials = credential_service_pb2_grpc.CredentialServiceStub(channel)
        calls = [
            lambda: providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name), timeout=10),
            lambda: credentials.GetProviderCredential(
                credential_pb.GetProviderCredentialRequest(name=provider.name), timeout=10
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as raised:
                call()
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_info_reason(raised.value) == "PROVIDER_KEY_UNREADABLE"
            assert provider.name in raised.value.details()
    # The control: the registry with the right master key validates it.
    result = generation.clients.providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name)).result
    assert result.state == pb.VALIDATION_STATE_VALID


def test_a_job_whose_provider_key_cannot_be_decrypted_fails_and_says_why(
    generation, stack, wrong_key_registry, suite_log, request
):
    project = generation.new_project()
    generation.provider(project)
    with started_workers(
        stack, log_dir_for(suite_log, request), 1, SYNTHTASKS_WORKER_REGISTRY_ADDRESS=wrong_key_registry
    ):
        job = generation.wait(generation.start(project, 3).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_FAILED
    assert job.error.reason == gen_pb.FAILURE_REASON_PROVIDER_ERROR
    assert "cannot be decrypted" in job.error.message
    assert generation.fake.stats().completions_served == 0
