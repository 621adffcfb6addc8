"""Every public RPC x every kind of caller: no token, an unknown token, a project token
of another project, a project token of the project, an admin token.

Admin-only calls: only the admin gets past authorization. Project calls: the admin and
the project's own token get past it. Calls for any caller (GetCallerIdentity): every
valid token gets past it. "Past authorization" means any status but
UNAUTHENTICATED and PERMISSION_DENIED (NOT_FOUND and INVALID_ARGUMENT are fine: the
requests name things that need not exist)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from synthtasks.v1 import audit_service_pb2 as audit_pb
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from tests.stack import Clients

PROJECT = "authz-project"
OTHER = "authz-other"
P = f"projects/{PROJECT}"
# A well-formed id (32 hex digits) that names nothing.
NOPE = "0" * 32


@dataclass(frozen=True)
class Rpc:
    name: str
    call: Callable[[Clients], object]
    admin_only: bool
    # Not about a project: any valid token may call it.
    any_token: bool = False


def _unary(service: str, method: str, request) -> Callable[[Clients], object]:
    return lambda clients: getattr(getattr(clients, service), method)(request, timeout=10)


def _stream(service: str, method: str, request) -> Callable[[Clients], object]:
    return lambda clients: list(getattr(getattr(clients, service), method)(request, timeout=10))


RPCS = [
    Rpc(
        "CreateProvider", _unary("providers", "CreateProvider", pb.CreateProviderRequest(provider=pb.Provider())), True
    ),
    Rpc("GetProvider", _unary("providers", "GetProvider", pb.GetProviderRequest(name="providers/nope")), True),
    Rpc("ListProviders", _unary("providers", "ListProviders", pb.ListProvidersRequest()), True),
    Rpc(
        "UpdateProvider",
        _unary("providers", "UpdateProvider", pb.UpdateProviderRequest(provider=pb.Provider(name="providers/nope"))),
        True,
    ),
    Rpc("DeleteProvider", _unary("providers", "DeleteProvider", pb.DeleteProviderRequest(name="providers/nope")), True),
    Rpc(
        "ValidateProvider",
        _unary("providers", "ValidateProvider", pb.ValidateProviderRequest(name="providers/nope")),
        True,
    ),
    Rpc(
        "TestProviderConnection",
        _unary("providers", "TestProviderConnection", pb.TestProviderConnectionRequest(provider=pb.Provider())),
        True,
    ),
    Rpc(
        "AssignProvider",
        _unary("providers", "AssignProvider", pb.AssignProviderRequest(project=P, provider="providers/nope")),
        True,
    ),
    Rpc(
        "UnassignProvider",
        _unary("providers", "UnassignProvider", pb.UnassignProviderRequest(project=P, provider="providers/nope")),
        True,
    ),
    Rpc(
        "ListProjectProviders",
        _unary("providers", "ListProjectProviders", pb.ListProjectProvidersRequest(project=P)),
        False,
    ),
    Rpc("CreateToken", _unary("tokens", "CreateToken", token_pb.CreateTokenRequest(token=token_pb.ApiToken())), True),
    Rpc("ListTokens", _unary("tokens", "ListTokens", token_pb.ListTokensRequest()), True),
    Rpc(
        "DeleteToken",
        _unary("tokens", "DeleteToken", token_pb.DeleteTokenRequest(name="tokens/0000000000000000")),
        True,
    ),
    Rpc(
        "GetCallerIdentity",
        _unary("tokens", "GetCallerIdentity", token_pb.GetCallerIdentityRequest()),
        False,
        any_token=True,
    ),
    Rpc(
        "CreateGenerationJob",
        _unary("generation", "CreateGenerationJob", gen_pb.CreateGenerationJobRequest(parent=P)),
        False,
    ),
    Rpc(
        "GetGenerationJob",
        _unary("generation", "GetGenerationJob", gen_pb.GetGenerationJobRequest(name=f"{P}/generationJobs/{NOPE}")),
        False,
    ),
    Rpc(
        "ListGenerationJobs",
        _unary("generation", "ListGenerationJobs", gen_pb.ListGenerationJobsRequest(parent=P)),
        False,
    ),
    Rpc(
        "WatchGenerationJob",
        _stream(
            "generation", "WatchGenerationJob", gen_pb.WatchGenerationJobRequest(name=f"{P}/generationJobs/{NOPE}")
        ),
        False,
    ),
    Rpc(
        "CancelGenerationJob",
        _unary(
            "generation", "CancelGenerationJob", gen_pb.CancelGenerationJobRequest(name=f"{P}/generationJobs/{NOPE}")
        ),
        False,
    ),
    Rpc(
        "GetProjectQuota",
        _unary("generation", "GetProjectQuota", gen_pb.GetProjectQuotaRequest(name=f"{P}/quota")),
        False,
    ),
    Rpc(
        "GetEntityBalance",
        _unary("generation", "GetEntityBalance", gen_pb.GetEntityBalanceRequest(scope=f"{P}/generationJobs/{NOPE}")),
        False,
    ),
    Rpc("ListAuditEvents", _unary("audit", "ListAuditEvents", audit_pb.ListAuditEventsRequest()), True),
    Rpc("ListStagedTexts", _unary("tasks", "ListStagedTexts", task_pb.ListStagedTextsRequest(parent=P)), False),
    Rpc(
        "GetStagedText",
        _unary("tasks", "GetStagedText", task_pb.GetStagedTextRequest(name=f"{P}/stagedTexts/{NOPE}")),
        False,
    ),
    Rpc(
        "UpdateStagedText",
        _unary(
            "tasks",
            "UpdateStagedText",
            task_pb.UpdateStagedTextRequest(staged_text=task_pb.StagedText(name=f"{P}/stagedTexts/{NOPE}")),
        ),
        False,
    ),
    Rpc(
        "DiscardStagedTexts", _unary("tasks", "DiscardStagedTexts", task_pb.DiscardStagedTextsRequest(parent=P)), False
    ),
    Rpc(
        "RestoreStagedTexts", _unary("tasks", "RestoreStagedTexts", task_pb.RestoreStagedTextsRequest(parent=P)), False
    ),
    Rpc(
        "ImportStagedTexts",
        _unary(
            "tasks", "ImportStagedTexts", task_pb.ImportStagedTextsRequest(parent=P, names=[f"{P}/stagedTexts/{NOPE}"])
        ),
        False,
    ),
    Rpc("ListTasks", _unary("tasks", "ListTasks", task_pb.ListTasksRequest(parent=P)), False),
    Rpc("GetTask", _unary("tasks", "GetTask", task_pb.GetTaskRequest(name=f"{P}/tasks/{NOPE}")), False),
    Rpc(
        "UpdateTask",
        _unary("tasks", "UpdateTask", task_pb.UpdateTaskRequest(task=task_pb.Task(name=f"{P}/tasks/{NOPE}"))),
        False,
    ),
    Rpc("ExportStagedTexts", _stream("tasks", "ExportStagedTexts", task_pb.ExportStagedTextsRequest(parent=P)), False),
    Rpc("ExportTasks", _stream("tasks", "ExportTasks", task_pb.ExportTasksRequest(parent=P)), False),
]

CALLERS = ["no token", "unknown token", "other project token", "project token", "admin token"]


@pytest.fixture(scope="module")
def callers(stack) -> Iterator[dict[str, Clients]]:
    admin = stack.admin()

    def project_token(project: str) -> str:
        request = token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[f"projects/{project}"])
        )
        return admin.tokens.CreateToken(request).secret

    yield {
        "no token": stack.clients(None),
        "unknown token": stack.clients("st_this-token-was-never-issued"),
        "other project token": stack.clients(project_token(OTHER)),
        "project token": stack.clients(project_token(PROJECT)),
        "admin token": admin,
    }


def expected(rpc: Rpc, caller: str) -> set[grpc.StatusCode] | None:
    """The status the call must end with, or None for "anything but an auth failure"."""
    if caller in ("no token", "unknown token"):
        return {grpc.StatusCode.UNAUTHENTICATED}
    if caller == "admin token" or rpc.any_token or (caller == "project token" and not rpc.admin_only):
        return None
    return {grpc.StatusCode.PERMISSION_DENIED}


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", RPCS, ids=[r.name for r in RPCS])
def test_every_rpc_authorizes_every_kind_of_caller(callers, rpc, caller):
    code = status_of(lambda: rpc.call(callers[caller]))
    wanted = expected(rpc, caller)
    if wanted is None:
        assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), code
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), code
    else:
        assert code in wanted, code


def test_the_matrix_covers_every_public_rpc():
    from synthtasks.v1 import (
        audit_service_pb2,
        generation_service_pb2,
        provider_service_pb2,
        task_service_pb2,
        token_service_pb2,
    )

    declared = {
        method.name
        for module in (
            provider_service_pb2,
            token_service_pb2,
            generation_service_pb2,
            task_service_pb2,
            audit_service_pb2,
        )
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert declared == {r.name for r in RPCS}


def test_a_project_token_is_denied_before_the_resource_is_looked_up(callers):
    """PERMISSION_DENIED, not NOT_FOUND: a foreign token learns nothing about what exists."""
    code = status_of(
        lambda: callers["other project token"].tasks.GetTask(task_pb.GetTaskRequest(name=f"{P}/tasks/{NOPE}"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
