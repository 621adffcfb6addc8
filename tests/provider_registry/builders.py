"""Provider messages for tests, pointing at the suite's fake OpenAI server (keyword
arguments override any field), and the credential a worker reads."""

from __future__ import annotations

import uuid

from synthtasks.internal.v1 import credential_service_pb2 as credential_pb
from synthtasks.internal.v1 import credential_service_pb2_grpc
from synthtasks.v1 import provider_service_pb2 as pb

from services.runtime.channels import internal_channel
from synthtasks_fake_llm import FakeOpenAIServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def openai_provider(fake: FakeOpenAIServer, key: str, **fields) -> pb.Provider:
    defaults = {
        "display_name": unique("OpenAI"),
        "kind": pb.PROVIDER_KIND_OPENAI,
        "endpoint": fake.openai_base_url,
        "model": "gpt-4o-mini",
    }
    return pb.Provider(**{**defaults, "api_key": key, **fields})


def azure_provider(fake: FakeOpenAIServer, key: str, **fields) -> pb.Provider:
    defaults = {
        "display_name": unique("Azure"),
        "kind": pb.PROVIDER_KIND_AZURE_OPENAI,
        "endpoint": fake.base_url,
        "deployment": "gpt4o-deploy",
        "api_version": "2024-06-01",
    }
    return pb.Provider(**{**defaults, "api_key": key, **fields})


def compatible_provider(fake: FakeOpenAIServer, key: str = "", **fields) -> pb.Provider:
    defaults = {
        "display_name": unique("Local"),
        "kind": pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        "endpoint": fake.openai_base_url,
        "model": "gpt-4o-mini",
    }
    return pb.Provider(**{**defaults, "api_key": key, **fields})


def credential(stack, name: str) -> credential_pb.ProviderCredential:
    """What a worker gets from the registry's CredentialService for provider `name`."""
    with internal_channel(stack.registry_address, stack.registry_settings) as channel:
        stub = credential_service_pb2_grpc.CredentialServiceStub(channel)
        return stub.GetProviderCredential(credential_pb.GetProviderCredentialRequest(name=name)).credential
