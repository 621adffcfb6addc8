"""Regression tests of #13 in the registry, through the gateway: crafted page tokens,
NUL bytes, huge values in errors, names with a trailing newline, AIP-134/158."""

from __future__ import annotations

import base64

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.vocabulary.page_tokens import MAX_PAGE_SIZE
from tests.leak_watch import new_key
from tests.provider_registry.builders import compatible_provider, openai_provider, unique
from tests.rich_status import field_violations


def rejected(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


CRAFTED_TOKENS = {
    "int": _token('{"after": 5}'),
    "object": _token('{"after": {"x": 1}}'),
    "array": _token('{"after": [true, 1]}'),
    "nul": _token('{"after": "a\\u0000b"}'),
    "deeply nested": _token("[" * 50_000),
}


@pytest.mark.parametrize("token", CRAFTED_TOKENS.values(), ids=CRAFTED_TOKENS.keys())
def test_crafted_page_tokens_are_invalid_argument_naming_page_token_on_list_providers_and_tokens(stack, token):
    admin = stack.admin()
    for call in (
        lambda: admin.providers.ListProviders(pb.ListProvidersRequest(page_token=token)),
        lambda: admin.tokens.ListTokens(token_pb.ListTokensRequest(page_token=token)),
    ):
        error = rejected(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(error)] == ["page_token"]


def test_a_page_token_the_api_returned_still_pages(stack, fake_llm):
    admin = stack.admin()
    for _ in range(3):
        admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm)))
    first = admin.providers.ListProviders(pb.ListProvidersRequest(page_size=2))
    second = admin.providers.ListProviders(pb.ListProvidersRequest(page_size=2, page_token=first.next_page_token))
    assert first.next_page_token and second.providers
    assert not {p.name for p in first.providers} & {p.name for p in second.providers}


def _provider_names(admin) -> set[str]:
    return {p.name for p in admin.providers.ListProviders(pb.ListProvidersRequest(page_size=MAX_PAGE_SIZE)).providers}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"display_name": "nul\x00name"}, "provider.display_name"),
        ({"api_key": "sk-abc\x00def"}, "provider.api_key"),
        ({"organization": "org\x00"}, "provider.organization"),
    ],
    ids=["display name", "api key", "organization"],
)
def test_a_nul_byte_in_a_provider_field_is_invalid_argument_and_writes_nothing(stack, fake_llm, fields, field):
    admin = stack.admin()
    before = _provider_names(admin)
    provider = openai_provider(fake_llm, new_key(), **fields)

    error = rejected(lambda: admin.providers.CreateProvider(pb.CreateProviderRequest(provider=provider)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(error)]
    assert _provider_names(admin) == before


def test_a_nul_byte_in_a_token_display_name_is_invalid_argument(stack):
    admin = stack.admin()
    token = token_pb.ApiToken(role=token_pb.TOKEN_ROLE_ADMIN, display_name="nul\x00")
    error = rejected(lambda: admin.tokens.CreateToken(token_pb.CreateTokenRequest(token=token)))
    assert [f for f, _ in field_violations(error)] == ["token.display_name"]
    token.display_name = "fine"
    assert admin.tokens.CreateToken(token_pb.CreateTokenRequest(token=token)).secret, "the control"


def test_a_huge_update_mask_path_gets_a_small_invalid_argument_naming_the_path(stack, fake_llm):
    admin = stack.admin()
    provider = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm))).provider
    request = pb.UpdateProviderRequest(provider=provider, update_mask=FieldMask(paths=["p" * 7000]))

    error = rejected(lambda: admin.providers.UpdateProvider(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["update_mask.paths[0]"]
    assert len(error.details()) < 1000 and "p" * 100 not in error.details()


def test_names_with_a_trailing_newline_are_refused_everywhere(stack, fake_llm):
    admin = stack.admin()
    provider_id = unique("lookalike")
    created = admin.providers.CreateProvider(
        pb.CreateProviderRequest(provider=compatible_provider(fake_llm), provider_id=provider_id)
    ).provider

    twin = rejected(
        lambda: admin.providers.CreateProvider(
            pb.CreateProviderRequest(provider=compatible_provider(fake_llm), provider_id=provider_id + "\n")
        )
    )
    get = rejected(lambda: admin.providers.GetProvider(pb.GetProviderRequest(name=created.name + "\n")))
    assign = rejected(
        lambda: admin.providers.AssignProvider(
            pb.AssignProviderRequest(project="projects/acme\n", provider=created.name)
        )
    )

    assert [f for f, _ in field_violations(twin)] == ["provider_id"]
    assert [f for f, _ in field_violations(get)] == ["name"]
    assert [f for f, _ in field_violations(assign)] == ["project"]
    assert admin.providers.GetProvider(pb.GetProviderRequest(name=created.name)).provider == created, "the control"


def test_a_member_cannot_read_a_phantom_project_with_a_trailing_newline(stack, fake_llm):
    admin = stack.admin()
    project = unique("secq")
    provider = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm))).provider
    admin.providers.AssignProvider(pb.AssignProviderRequest(project=f"projects/{project}", provider=provider.name))
    secret = admin.tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[f"projects/{project}"])
        )
    ).secret
    member = stack.clients(secret)

    error = rejected(
        lambda: member.providers.ListProjectProviders(pb.ListProjectProvidersRequest(project=f"projects/{project}\n"))
    )
    mine = member.providers.ListProjectProviders(pb.ListProjectProvidersRequest(project=f"projects/{project}"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [p.provider.name for p in mine.project_providers] == [provider.name]


def test_an_update_without_a_mask_changes_the_populated_fields_only_aip_134(stack, fake_llm):
    admin = stack.admin()
    provider = admin.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=compatible_provider(
                fake_llm, limits=pb.ProviderLimits(requests_per_minute=60, tokens_per_minute=9)
            )
        )
    ).provider
    new_name = unique("Renamed")

    updated = admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(
            provider=pb.Provider(
                name=provider.name,
                etag=provider.etag,
                display_name=new_name,
                limits=pb.ProviderLimits(requests_per_minute=120),
            )
        )
    ).provider

    assert updated.display_name == new_name
    assert (updated.limits.requests_per_minute, updated.limits.tokens_per_minute) == (120, 9), "unset: kept"
    assert (updated.endpoint, updated.model) == (provider.endpoint, provider.model)


def test_a_page_size_above_the_maximum_is_capped_aip_158(stack, fake_llm):
    admin = stack.admin()
    admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm)))
    reply = admin.providers.ListProviders(pb.ListProvidersRequest(page_size=MAX_PAGE_SIZE * 10))
    assert reply.providers
    error = rejected(lambda: admin.providers.ListProviders(pb.ListProvidersRequest(page_size=-1)))
    assert [f for f, _ in field_violations(error)] == ["page_size"], "the control: a negative size is refused"


def test_etags_have_one_format_and_a_malformed_one_names_the_field(stack, fake_llm):
    admin = stack.admin()
    provider = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm))).provider
    assert provider.etag.startswith("v")

    error = rejected(
        lambda: admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name, etag="not-an-etag"))
    )

    assert [f for f, _ in field_violations(error)] == ["etag"]
    admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name, etag=provider.etag))
