"""Members never see secrets in provider details: an endpoint with credentials in it
(`user:password@host`) is refused at creation and update, naming `provider.endpoint`,
and one stored before that rule is never returned with them; members see neither the
organization, nor the validation message, nor the endpoint's query."""

from __future__ import annotations

import uuid

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2
from synthtasks.v1 import provider_service_pb2 as pb

from tests.gateway.tenant_harness import new_project, project_token
from tests.rich_status import field_violations


def compatible(stack, **fields) -> pb.Provider:
    values = {
        "display_name": f"member-view-{uuid.uuid4().hex[:6]}",
        "kind": pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        "endpoint": stack.fake_llm.openai_base_url,
        "model": "gpt-4o-mini",
        **fields,
    }
    return pb.Provider(**values)


def with_userinfo(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://admin:hunter2-secret@{rest}"


def provider_count(stack) -> int:
    return len(stack.admin().providers.ListProviders(pb.ListProvidersRequest(page_size=1000), timeout=10).providers)


def test_an_endpoint_with_credentials_is_refused_at_creation_and_update(stack):
    admin = stack.admin()
    before = provider_count(stack)
    for request in (
        pb.CreateProviderRequest(provider=compatible(stack, endpoint=with_userinfo(stack.fake_llm.openai_base_url))),
        pb.CreateProviderRequest(
            provider=compatible(stack, endpoint=stack.fake_llm.openai_base_url.replace("://", "://token@"))
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            admin.providers.CreateProvider(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(raised.value)] == ["provider.endpoint"]
        assert "hunter2" not in (raised.value.details() or "")
    assert provider_count(stack) == before

    created = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible(stack)), timeout=10).provider
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.UpdateProvider(
            pb.UpdateProviderRequest(
                provider=pb.Provider(name=created.name, endpoint=with_userinfo(stack.fake_llm.openai_base_url)),
                update_mask=field_mask_pb2.FieldMask(paths=["endpoint"]),
            ),
            timeout=10,
        )
    assert [field for field, _ in field_violations(raised.value)] == ["provider.endpoint"]
    got = admin.providers.GetProvider(pb.GetProviderRequest(name=created.name), timeout=10).provider
    assert got.endpoint == stack.fake_llm.openai_base_url


def test_members_see_no_secrets_and_no_one_sees_credentials_stored_before_the_rule(stack):
    admin = stack.admin()
    project = new_project()
    created = admin.providers.CreateProvider(
        pb.CreateProviderRequest(provider=compatible(stack, organization="org-private-42")), timeout=10
    ).provider
    admin.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project}", provider=created.name, default=True), timeout=10
    )
    admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=created.name), timeout=30)
    # A row saved before credentials in endpoints were refused.
    legacy = with_userinfo(stack.fake_llm.openai_base_url) + "?api-key=query-secret"
    with psycopg.connect(stack.registry_settings.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE providers SET endpoint = %s WHERE id = %s", (legacy, created.name.removeprefix("providers/"))
        )

    member = stack.clients(project_token(stack, project)[0])
    shown = member.providers.ListProjectProviders(
        pb.ListProjectProvidersRequest(project=f"projects/{project}"), timeout=10
    ).project_providers
    assert len(shown) == 1
    seen = shown[0].provider
    assert seen.endpoint == stack.fake_llm.openai_base_url  # scheme, host, port and path only
    assert seen.organization == "" and seen.key_hint == ""
    assert seen.last_validation.state != pb.VALIDATION_STATE_UNSPECIFIED  # the state, as a positive control
    assert seen.last_validation.message == ""
    assert seen.model == "gpt-4o-mini" and seen.display_name == created.display_name

    as_admin = admin.providers.GetProvider(pb.GetProviderRequest(name=created.name), timeout=10).provider
    assert "hunter2" not in as_admin.endpoint and "admin:" not in as_admin.endpoint
    assert as_admin.organization == "org-private-42"  # admins keep the whole view
    for response in (shown[0], as_admin):
        assert "hunter2" not in str(response)
