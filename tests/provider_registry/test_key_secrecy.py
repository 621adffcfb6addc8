"""A plaintext API key never shows in the database, in responses, in error messages or
in logs; rotating the provider key or the master key keeps the provider usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from cryptography.fernet import Fernet
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.internal.v1 import credential_service_pb2 as credential_pb
from synthtasks.internal.v1 import credential_service_pb2_grpc
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2_grpc

from services.provider_registry.config import Settings as RegistrySettings
from services.provider_registry.server import build_server as build_registry_server
from services.runtime.channels import internal_channel
from tests.leak_watch import new_key
from tests.provider_registry.builders import azure_provider, credential, openai_provider


def database_dump(url: str) -> str:
    """Every row of every table, as text (bytea columns included as hex and as bytes)."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                rows.append(repr(row))
                rows.extend(bytes(v).decode("latin-1") for v in row if isinstance(v, (bytes, memoryview)))
    return "\n".join(rows)


def test_the_plaintext_key_is_nowhere_but_in_the_workers_credential(stack, fake_llm, suite_log):
    key = new_key()
    fake_llm.configure(api_keys={key})
    mark = suite_log.mark()
    admin = stack.admin()
    responses = []
    created = admin.providers.CreateProvider(
        pb.CreateProviderRequest(provider=openai_provider(fake_llm, key), validate_first=True)
    )
    responses.append(created)
    responses.append(admin.providers.GetProvider(pb.GetProviderRequest(name=created.provider.name)))
    responses.append(admin.providers.ListProviders(pb.ListProvidersRequest(page_size=1000)))
    responses.append(admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=created.provider.name)))
    responses.append(
        admin.providers.TestProviderConnection(
            pb.TestProviderConnectionRequest(provider=openai_provider(fake_llm, key))
        )
    )

    assert created.provider.key_hint.endswith(key[-4:]), "responses do speak of the key, by its hint"
    for response in responses:
        assert key not in str(response)
        assert key.encode() not in response.SerializeToString()
    dump = database_dump(stack.registry_settings.database_url)
    assert created.provider.name.removeprefix("providers/") in dump, "the dump holds the provider"
    assert key not in dump
    logged = suite_log.since(mark)
    assert "/synthtasks.v1.ProviderService/TestProviderConnection" in logged, "the capture saw these calls"
    assert key not in logged
    assert credential(stack, created.provider.name).api_key == key


def test_a_provider_that_echoes_a_wrong_key_in_its_error_does_not_get_it_through(stack, fake_llm, suite_log):
    fake_llm.configure(api_keys={new_key()}, echo_key_in_errors=True)
    wrong = new_key()
    mark = suite_log.mark()
    admin = stack.admin()
    provider = admin.providers.CreateProvider(
        pb.CreateProviderRequest(provider=openai_provider(fake_llm, wrong))
    ).provider
    result = admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name))
    assert result.result.state == pb.VALIDATION_STATE_INVALID_KEY
    assert wrong not in str(result)
    assert "[redacted]" in result.result.message
    with pytest.raises(Exception) as raised:
        admin.providers.CreateProvider(
            pb.CreateProviderRequest(provider=openai_provider(fake_llm, wrong), validate_first=True)
        )
    assert wrong not in raised.value.details()
    dump = database_dump(stack.registry_settings.database_url)
    assert provider.name.removeprefix("providers/") in dump, "the dump holds the provider"
    assert wrong not in dump
    logged = suite_log.since(mark)
    assert "FAILED_PRECONDITION" in logged, "the capture saw the refused CreateProvider"
    assert wrong not in logged


def test_rotating_the_provider_key_keeps_it_usable(stack, fake_llm):
    old, new = new_key(), new_key()
    fake_llm.configure(api_keys={old})
    admin = stack.admin()
    provider = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=azure_provider(fake_llm, old))).provider
    fake_llm.configure(api_keys={new})
    provider.api_key = new
    admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(provider=provider, update_mask=FieldMask(paths=["api_key"]))
    )
    assert (
        admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name)).result.state
        == pb.VALIDATION_STATE_VALID
    )
    assert credential(stack, provider.name).api_key == new
    assert old not in database_dump(stack.registry_settings.database_url)


def test_rotating_the_master_key_re_encrypts_every_row_and_keeps_providers_usable(fake_llm, make_database, tmp_path):
    """Runs on a registry of its own: rotating the shared one would strand the others' rows."""
    key = new_key()
    fake_llm.configure(api_keys={key})
    old_master, new_master = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = RegistrySettings(
        internal_token="rotation-test", master_keys=old_master, database_url=make_database("rotation"), metrics_port=0
    )

    def serving(master_keys: str):
        return build_registry_server(
            RegistrySettings(**{**base.model_dump(), "master_keys": master_keys}), "127.0.0.1:0"
        )

    server = serving(old_master)
    try:
        with internal_channel(f"127.0.0.1:{server.port}", base) as channel:
            created = (
                provider_service_pb2_grpc.ProviderServiceStub(channel)
                .CreateProvider(pb.CreateProviderRequest(provider=openai_provider(fake_llm, key)))
                .provider
            )
    finally:
        server.stop(0)

    # What a rolling deploy runs: the new key first, the old one still listed, then the command.
    env = {
        **os.environ,
        "SYNTHTASKS_INTERNAL_TOKEN": "rotation-test",
        "SYNTHTASKS_REGISTRY_DATABASE_URL": base.database_url,
        "SYNTHTASKS_REGISTRY_MASTER_KEYS": f"{new_master},{old_master}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.provider_registry", "rotate-master-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"re_encrypted": 1}
    assert old_master not in done.stdout + done.stderr and key not in done.stdout + done.stderr

    # The old key dropped: every row must decrypt with the new key alone.
    server = serving(new_master)
    try:
        with internal_channel(f"127.0.0.1:{server.port}", base) as channel:
            providers = provider_service_pb2_grpc.ProviderServiceStub(channel)
            result = providers.ValidateProvider(pb.ValidateProviderRequest(name=created.name)).result
            assert result.state == pb.VALIDATION_STATE_VALID
            stub = credential_service_pb2_grpc.CredentialServiceStub(channel)
            fetched = stub.GetProviderCredential(credential_pb.GetProviderCredentialRequest(name=created.name))
            assert fetched.credential.api_key == key
    finally:
        server.stop(0)
