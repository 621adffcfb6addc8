"""Managing providers, assignments and tokens through the gateway."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import token_service_pb2 as token_pb

from tests.leak_watch import new_key
from tests.provider_registry.builders import (
    azure_provider,
    compatible_provider,
    credential,
    openai_provider,
    unique,
)
from tests.rich_status import error_info_reason, field_violations


def create(admin, provider: pb.Provider, **request) -> pb.Provider:
    return admin.providers.CreateProvider(pb.CreateProviderRequest(provider=provider, **request)).provider


def test_providers_of_all_three_kinds_are_created_and_read_back_without_their_key(stack, fake_llm):
    admin = stack.admin()
    key = "sk-proj-abcdefghijklmnop9f2c"
    made = [
        create(
            admin,
            openai_provider(fake_llm, key, organization="org-42", limits=pb.ProviderLimits(requests_per_minute=600)),
        ),
        create(admin, azure_provider(fake_llm, key)),
        create(admin, compatible_provider(fake_llm)),
    ]
    for provider in made:
        read = admin.providers.GetProvider(pb.GetProviderRequest(name=provider.name)).provider
        assert read == provider
        assert read.api_key == ""
    assert made[0].key_hint == "sk-…9f2c"
    assert made[0].organization == "org-42"
    assert made[0].limits.requests_per_minute == 600
    assert made[0].max_choices_per_request == 8
    assert made[1].deployment == "gpt4o-deploy" and made[1].api_version == "2024-06-01"
    assert made[2].key_hint == "" and made[2].max_choices_per_request == 1
    listed = {p.name: p for p in admin.providers.ListProviders(pb.ListProvidersRequest(page_size=1000)).providers}
    assert all(listed[p.name].api_key == "" for p in made)


def test_a_provider_id_is_derived_from_its_display_name_unless_given(stack, fake_llm):
    admin = stack.admin()
    display = unique("Azure EU (prod)")
    derived = create(
        admin, pb.Provider(display_name=display, kind=pb.PROVIDER_KIND_OPENAI, model="gpt-4o-mini", api_key=new_key())
    )
    assert derived.name == f"providers/azure-eu-prod-{display[-8:]}"
    chosen = create(admin, openai_provider(fake_llm, new_key()), provider_id=unique("chosen"))
    assert chosen.name.startswith("providers/chosen-")


def test_listing_providers_pages_through_all_of_them(stack, fake_llm):
    admin = stack.admin()
    for _ in range(5):
        create(admin, compatible_provider(fake_llm))
    seen, token = [], ""
    while True:
        page = admin.providers.ListProviders(pb.ListProvidersRequest(page_size=2, page_token=token))
        assert len(page.providers) <= 2
        seen.extend(p.name for p in page.providers)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) >= 5


def test_updating_rotates_the_key_renames_and_changes_limits(stack, fake_llm):
    admin = stack.admin()
    old_key, new = new_key(), new_key()
    fake_llm.configure(api_keys={old_key})
    provider = create(admin, openai_provider(fake_llm, old_key))

    provider.api_key = new
    provider.display_name = unique("Renamed")
    provider.limits.max_concurrent_requests = 12
    updated = admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(
            provider=provider,
            update_mask=FieldMask(paths=["api_key", "display_name", "limits.max_concurrent_requests"]),
        )
    ).provider
    assert updated.key_hint == f"sk-…{new[-4:]}"
    assert updated.display_name == provider.display_name
    assert updated.limits.max_concurrent_requests == 12
    assert updated.etag != provider.etag

    fake_llm.configure(api_keys={new})
    result = admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name)).result
    assert result.state == pb.VALIDATION_STATE_VALID


def test_an_update_with_a_stale_etag_is_aborted(stack, fake_llm):
    admin = stack.admin()
    provider = create(admin, compatible_provider(fake_llm))
    first = pb.Provider(name=provider.name, etag=provider.etag, display_name=unique("First"))
    admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(provider=first, update_mask=FieldMask(paths=["display_name"]))
    )
    second = pb.Provider(name=provider.name, etag=provider.etag, display_name=unique("Second"))
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.UpdateProvider(
            pb.UpdateProviderRequest(provider=second, update_mask=FieldMask(paths=["display_name"]))
        )
    assert raised.value.code() == grpc.StatusCode.ABORTED


def test_the_kind_of_a_provider_cannot_be_changed(stack, fake_llm):
    admin = stack.admin()
    provider = create(admin, compatible_provider(fake_llm))
    provider.kind = pb.PROVIDER_KIND_OPENAI
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.UpdateProvider(
            pb.UpdateProviderRequest(provider=provider, update_mask=FieldMask(paths=["kind"]))
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask" in raised.value.details()


def test_a_provider_assigned_to_a_project_is_deleted_only_with_force(stack, fake_llm):
    admin = stack.admin()
    provider = create(admin, compatible_provider(fake_llm))
    project = f"projects/{unique('del')}"
    admin.providers.AssignProvider(pb.AssignProviderRequest(project=project, provider=provider.name))
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_reason(raised.value) == "PROVIDER_ASSIGNED"

    admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name, force=True))
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.GetProvider(pb.GetProviderRequest(name=provider.name))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert not admin.providers.ListProjectProviders(pb.ListProjectProvidersRequest(project=project)).project_providers


def test_an_unassigned_provider_is_deleted_without_force(stack, fake_llm):
    admin = stack.admin()
    provider = create(admin, compatible_provider(fake_llm))
    admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name))
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_project_has_several_providers_and_exactly_one_default(stack, fake_llm):
    admin = stack.admin()
    first, second, third = (create(admin, compatible_provider(fake_llm)) for _ in range(3))
    project = f"projects/{unique('proj')}"

    assigned = admin.providers.AssignProvider(pb.AssignProviderRequest(project=project, provider=first.name))
    assert assigned.project_provider.default, "the first provider of a project becomes its default"
    admin.providers.AssignProvider(pb.AssignProviderRequest(project=project, provider=second.name))
    admin.providers.AssignProvider(pb.AssignProviderRequest(project=project, provider=third.name, default=True))

    listed = admin.providers.ListProjectProviders(pb.ListProjectProvidersRequest(project=project)).project_providers
    assert {p.provider.name for p in listed} == {first.name, second.name, third.name}
    assert [p.provider.name for p in listed if p.default] == [third.name]
    assert all(p.provider.api_key == "" and p.provider.key_hint == "" for p in listed)

    admin.providers.UnassignProvider(pb.UnassignProviderRequest(project=project, provider=second.name))
    listed = admin.providers.ListProjectProviders(pb.ListProjectProvidersRequest(project=project)).project_providers
    assert {p.provider.name for p in listed} == {first.name, third.name}
    with pytest.raises(grpc.RpcError) as raised:
        admin.providers.UnassignProvider(pb.UnassignProviderRequest(project=project, provider=second.name))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_tokens_are_shown_once_and_then_only_by_prefix(stack):
    admin = stack.admin()
    created = admin.tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(
                role=token_pb.TOKEN_ROLE_PROJECT, projects=["projects/a", "projects/b"], display_name="ci"
            )
        )
    )
    assert created.secret.startswith("st_") and len(created.secret) > 40
    listed = admin.tokens.ListTokens(token_pb.ListTokensRequest(page_size=1000)).tokens
    mine = next(t for t in listed if t.name == created.token.name)
    assert mine.projects == ["projects/a", "projects/b"]
    assert created.secret.startswith(mine.token_prefix) and mine.token_prefix != created.secret
    assert created.secret not in str(listed)


def test_a_deleted_token_stops_working(stack):
    admin = stack.admin()
    created = admin.tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=["projects/gone"])
        )
    )
    stack.clients(created.secret).providers.ListProjectProviders(
        pb.ListProjectProvidersRequest(project="projects/gone")
    )
    admin.tokens.DeleteToken(token_pb.DeleteTokenRequest(name=created.token.name))
    # The gateway caches identities briefly; a fresh gateway would see the revocation at once.
    assert created.token.name not in {
        t.name for t in admin.tokens.ListTokens(token_pb.ListTokensRequest(page_size=1000)).tokens
    }


def test_the_request_timeout_and_choices_per_request_can_be_changed(stack, fake_llm):
    admin = stack.admin()
    provider = create(admin, compatible_provider(fake_llm))
    provider.request_timeout.FromSeconds(45)
    provider.max_choices_per_request = 4
    updated = admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(
            provider=provider, update_mask=FieldMask(paths=["request_timeout", "max_choices_per_request"])
        )
    ).provider
    assert updated.request_timeout.seconds == 45
    assert updated.max_choices_per_request == 4


def test_structured_output_defaults_by_kind_can_be_changed_and_reaches_the_worker(stack, fake_llm):
    admin = stack.admin()
    hosted = create(admin, openai_provider(fake_llm, new_key()))
    compatible = create(admin, compatible_provider(fake_llm))
    assert hosted.structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
    assert create(admin, azure_provider(fake_llm, new_key())).structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
    assert compatible.structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT
    assert credential(stack, compatible.name).structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT

    compatible.structured_output = pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
    mask = FieldMask(paths=["structured_output"])
    updated = admin.providers.UpdateProvider(pb.UpdateProviderRequest(provider=compatible, update_mask=mask)).provider
    assert updated.structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
    assert credential(stack, compatible.name).structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA

    updated.structured_output = pb.STRUCTURED_OUTPUT_MODE_UNSPECIFIED
    with pytest.raises(grpc.RpcError) as refused:
        admin.providers.UpdateProvider(pb.UpdateProviderRequest(provider=updated, update_mask=mask))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["provider.structured_output"]
