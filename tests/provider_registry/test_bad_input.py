"""Invalid provider input gets INVALID_ARGUMENT (or the precise status) naming the
field, and writes nothing."""

from __future__ import annotations

import grpc
import pytest
from synthtasks.v1 import provider_service_pb2 as pb

from tests.leak_watch import new_key
from tests.provider_registry.builders import azure_provider, compatible_provider, openai_provider, unique
from tests.rich_status import error_info_reason, field_violations


def provider_count(admin) -> int:
    return len(admin.providers.ListProviders(pb.ListProvidersRequest(page_size=1000)).providers)


def rejected(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


BAD_PROVIDERS = [
    ("empty display name", lambda p: setattr(p, "display_name", "  "), "provider.display_name"),
    ("overlong display name", lambda p: setattr(p, "display_name", "x" * 101), "provider.display_name"),
    ("control character in display name", lambda p: setattr(p, "display_name", "bad\x07name"), "provider.display_name"),
    ("unknown kind", lambda p: setattr(p, "kind", 42), "provider.kind"),
    ("unspecified kind", lambda p: setattr(p, "kind", pb.PROVIDER_KIND_UNSPECIFIED), "provider.kind"),
    ("endpoint is not a URL", lambda p: setattr(p, "endpoint", "not a url"), "provider.endpoint"),
    ("endpoint with a bad scheme", lambda p: setattr(p, "endpoint", "ftp://example.test/v1"), "provider.endpoint"),
    (
        "negative requests per minute",
        lambda p: setattr(p.limits, "requests_per_minute", -1),
        "provider.limits.requests_per_minute",
    ),
    (
        "absurd tokens per minute",
        lambda p: setattr(p.limits, "tokens_per_minute", 2_000_000_000),
        "provider.limits.tokens_per_minute",
    ),
    (
        "negative concurrency",
        lambda p: setattr(p.limits, "max_concurrent_requests", -5),
        "provider.limits.max_concurrent_requests",
    ),
    (
        "too many choices per request",
        lambda p: setattr(p, "max_choices_per_request", 1000),
        "provider.max_choices_per_request",
    ),
    ("missing key", lambda p: setattr(p, "api_key", ""), "provider.api_key"),
    ("missing model", lambda p: setattr(p, "model", ""), "provider.model"),
    ("deployment on a non-Azure provider", lambda p: setattr(p, "deployment", "d1"), "provider.deployment"),
]


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=n) for n, m, f in BAD_PROVIDERS])
def test_a_bad_provider_is_refused_naming_the_field_and_nothing_is_written(stack, fake_llm, mutate, field):
    admin = stack.admin()
    provider = openai_provider(fake_llm, new_key())
    mutate(provider)
    before = provider_count(admin)
    error = rejected(lambda: admin.providers.CreateProvider(pb.CreateProviderRequest(provider=provider)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(error)], field_violations(error)
    assert provider_count(admin) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("deployment", ""), ("api_version", ""), ("api_version", "yesterday"), ("endpoint", "")],
)
def test_azure_needs_endpoint_deployment_and_api_version(stack, fake_llm, field, value):
    admin = stack.admin()
    provider = azure_provider(fake_llm, new_key())
    setattr(provider, field, value)
    error = rejected(lambda: admin.providers.CreateProvider(pb.CreateProviderRequest(provider=provider)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"provider.{field}" in [f for f, _ in field_violations(error)]


def test_an_openai_compatible_server_needs_its_base_url(stack, fake_llm):
    provider = compatible_provider(fake_llm)
    provider.endpoint = ""
    error = rejected(lambda: stack.admin().providers.CreateProvider(pb.CreateProviderRequest(provider=provider)))
    assert "provider.endpoint" in [f for f, _ in field_violations(error)]


def test_every_violation_is_reported_at_once(stack, fake_llm):
    provider = azure_provider(fake_llm, "", deployment="", api_version="")
    provider.display_name = ""
    error = rejected(lambda: stack.admin().providers.CreateProvider(pb.CreateProviderRequest(provider=provider)))
    fields = {f for f, _ in field_violations(error)}
    assert {"provider.display_name", "provider.deployment", "provider.api_version", "provider.api_key"} <= fields


def test_a_duplicate_display_name_is_refused_whatever_its_case(stack, fake_llm):
    admin = stack.admin()
    name = unique("Shared Name")
    admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm, display_name=name)))
    before = provider_count(admin)
    error = rejected(
        lambda: admin.providers.CreateProvider(
            pb.CreateProviderRequest(provider=compatible_provider(fake_llm, display_name=name.upper()))
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info_reason(error) == "DISPLAY_NAME_TAKEN"
    assert provider_count(admin) == before


@pytest.mark.parametrize("provider_id", ["Upper", "1starts-with-digit", "has_underscore", "x" * 64])
def test_a_malformed_provider_id_is_refused(stack, fake_llm, provider_id):
    error = rejected(
        lambda: stack.admin().providers.CreateProvider(
            pb.CreateProviderRequest(provider=compatible_provider(fake_llm), provider_id=provider_id)
        )
    )
    assert "provider_id" in [f for f, _ in field_violations(error)]


@pytest.mark.parametrize("name", ["", "providers/", "provider/x", "providers/UPPER", "providers/a/b"])
def test_a_malformed_provider_name_is_invalid_and_an_unknown_one_is_not_found(stack, name):
    admin = stack.admin()
    error = rejected(lambda: admin.providers.GetProvider(pb.GetProviderRequest(name=name)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["name"]
    error = rejected(lambda: admin.providers.GetProvider(pb.GetProviderRequest(name="providers/never-created")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "project", ["", "projects/", "projects/UPPER", "projects/-dash-first", "projects/" + "a" * 64, "teams/x"]
)
def test_assigning_to_an_invalid_project_id_is_refused_and_nothing_is_written(stack, fake_llm, project):
    admin = stack.admin()
    provider = admin.providers.CreateProvider(pb.CreateProviderRequest(provider=compatible_provider(fake_llm))).provider
    error = rejected(
        lambda: admin.providers.AssignProvider(pb.AssignProviderRequest(project=project, provider=provider.name))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "project" in [f for f, _ in field_violations(error)]
    admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name))  # not assigned: no force needed


def test_assigning_an_unknown_provider_is_not_found(stack):
    error = rejected(
        lambda: stack.admin().providers.AssignProvider(
            pb.AssignProviderRequest(project="projects/some-project", provider="providers/never-created")
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
