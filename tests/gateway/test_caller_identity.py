"""GetCallerIdentity: any valid token learns who it is and where it may act (a project
token its own projects and no others; an admin every project, with the projects the
registry knows of as suggestions), never anything of its secret."""

from __future__ import annotations

import grpc
import pytest
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import token_service_pb2 as token_pb
from synthtasks.v1 import token_service_pb2_grpc

from services.runtime.channels import internal_channel
from tests.gateway.tenant_harness import default_provider, new_project
from tests.rich_status import error_info_reason

WHO = token_pb.GetCallerIdentityRequest()


def _mint(stack, role: int, projects: list[str], display_name: str) -> token_pb.CreateTokenResponse:
    return stack.admin().tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(role=role, projects=[f"projects/{p}" for p in projects], display_name=display_name)
        ),
        timeout=10,
    )


def _code_and_reason(call) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), error_info_reason(caught.value)


def test_a_project_token_learns_its_own_projects_and_nothing_of_others(stack):
    mine = sorted([new_project(), new_project()])
    someone_elses = new_project()
    default_provider(stack, someone_elses)
    minted = _mint(stack, token_pb.TOKEN_ROLE_PROJECT, list(reversed(mine)), "two-project reviewer")

    me = stack.clients(minted.secret).tokens.GetCallerIdentity(WHO, timeout=10)

    assert me.token == minted.token.name
    assert me.display_name == "two-project reviewer"
    assert me.role == token_pb.TOKEN_ROLE_PROJECT
    assert list(me.projects) == [f"projects/{p}" for p in mine]
    assert not me.all_projects
    # The other project is known (an admin is offered it: the positive control) but not
    # to this token.
    assert f"projects/{someone_elses}" in stack.admin().tokens.GetCallerIdentity(WHO, timeout=10).known_projects
    assert list(me.known_projects) == []
    # Nothing of the secret, not even its prefix: the creation answer carries both (so
    # the check can see them), this one neither.
    for part in (minted.secret, minted.token.token_prefix):
        assert part.encode() in minted.SerializeToString()
        assert part.encode() not in me.SerializeToString()


def test_an_admin_may_act_anywhere_and_is_offered_the_projects_the_registry_knows(stack):
    with_provider = new_project()
    default_provider(stack, with_provider)
    named_by_a_token = new_project()
    _mint(stack, token_pb.TOKEN_ROLE_PROJECT, [named_by_a_token], "named")
    admin = stack.admin()

    me = admin.tokens.GetCallerIdentity(WHO, timeout=10)

    assert me.role == token_pb.TOKEN_ROLE_ADMIN
    assert me.all_projects
    assert list(me.projects) == []
    assert {f"projects/{with_provider}", f"projects/{named_by_a_token}"} <= set(me.known_projects)
    assert list(me.known_projects) == sorted(set(me.known_projects))
    listed = admin.tokens.ListTokens(token_pb.ListTokensRequest(page_size=1000), timeout=10).tokens
    mine = next(t for t in listed if t.name == me.token)
    assert mine.token_prefix == stack.admin_token[:10]
    assert stack.admin_token[:10].encode() not in me.SerializeToString()


def test_a_project_whose_only_provider_was_unassigned_is_no_longer_suggested(stack):
    project = new_project()
    provider = default_provider(stack, project)
    admin = stack.admin()
    assert f"projects/{project}" in admin.tokens.GetCallerIdentity(WHO, timeout=10).known_projects
    admin.providers.UnassignProvider(
        pb.UnassignProviderRequest(project=f"projects/{project}", provider=provider.name), timeout=10
    )
    assert f"projects/{project}" not in admin.tokens.GetCallerIdentity(WHO, timeout=10).known_projects


@pytest.mark.parametrize("token", [None, "st_this-token-was-never-issued"], ids=["no token", "unknown token"])
def test_without_a_valid_token_the_call_is_unauthenticated(stack, token):
    code, _ = _code_and_reason(lambda: stack.clients(token).tokens.GetCallerIdentity(WHO, timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_revoked_token_is_unauthenticated_at_once(stack):
    """The gateway remembers valid tokens for a while (auth_cache_seconds); the registry
    answers from the token's row, so a token revoked meanwhile learns nothing."""
    minted = _mint(stack, token_pb.TOKEN_ROLE_PROJECT, [new_project()], "soon revoked")
    clients = stack.clients(minted.secret)
    assert clients.tokens.GetCallerIdentity(WHO, timeout=10).token == minted.token.name
    stack.admin().tokens.DeleteToken(token_pb.DeleteTokenRequest(name=minted.token.name), timeout=10)
    assert _code_and_reason(lambda: clients.tokens.GetCallerIdentity(WHO, timeout=10)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_UNKNOWN",
    )


def test_the_registry_refuses_a_call_that_names_no_caller(stack):
    """Behind the internal credential but without the gateway's word on the caller (a
    service asking for itself) there is nobody to describe."""
    with internal_channel(stack.registry_address, stack.gateway_settings) as channel:
        registry = token_service_pb2_grpc.TokenServiceStub(channel)
        assert _code_and_reason(lambda: registry.GetCallerIdentity(WHO, timeout=10)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_MISSING",
        )
        # The same channel reaches the registry's token service (positive control).
        assert registry.ListTokens(token_pb.ListTokensRequest(page_size=1), timeout=10).tokens
