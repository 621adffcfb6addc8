"""Audit: every access-log line names the caller's token (its resource name, never its
secret) and the project; every admin change to providers, assignments and tokens is an
audit event (who, what, when) with its own log line, listable by admins page by page."""

from __future__ import annotations

import logging
import time
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2
from synthtasks.v1 import audit_service_pb2 as audit_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from tests.gateway.tenant_harness import new_project, project_token


def all_events(clients, page_size: int = 3) -> list[audit_pb.AuditEvent]:
    events, token = [], ""
    while True:
        reply = clients.audit.ListAuditEvents(
            audit_pb.ListAuditEventsRequest(page_size=page_size, page_token=token), timeout=10
        )
        events.extend(reply.audit_events)
        token = reply.next_page_token
        if not token:
            return events


@pytest.fixture
def admin_name(stack) -> str:
    """The resource name of the suite's admin token (as the registry knows it)."""
    prefix = stack.admin_token[:10]
    tokens = stack.admin().tokens.ListTokens(token_pb.ListTokensRequest(page_size=1000), timeout=10).tokens
    return next(t.name for t in tokens if t.token_prefix == prefix)


def test_each_admin_change_is_an_audit_event_and_an_audit_log_line(stack, admin_name, caplog):
    admin = stack.admin()
    project = new_project()
    newest_before = all_events(admin, page_size=1000)[:1]
    caplog.set_level(logging.INFO)

    provider = admin.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=pb.Provider(
                display_name=f"audited-{uuid.uuid4().hex[:6]}",
                kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                endpoint=stack.fake_llm.openai_base_url,
                model="gpt-4o-mini",
            )
        ),
        timeout=10,
    ).provider
    admin.providers.UpdateProvider(
        pb.UpdateProviderRequest(
            provider=pb.Provider(name=provider.name, api_key="sk-rotated-" + uuid.uuid4().hex, model="gpt-4o"),
            update_mask=field_mask_pb2.FieldMask(paths=["api_key", "model"]),
        ),
        timeout=10,
    )
    admin.providers.ValidateProvider(pb.ValidateProviderRequest(name=provider.name), timeout=30)
    admin.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project}", provider=provider.name), timeout=10
    )
    admin.providers.UnassignProvider(
        pb.UnassignProviderRequest(project=f"projects/{project}", provider=provider.name), timeout=10
    )
    admin.providers.DeleteProvider(pb.DeleteProviderRequest(name=provider.name), timeout=10)
    secret, token_name = project_token(stack, project)
    admin.tokens.DeleteToken(token_pb.DeleteTokenRequest(name=token_name), timeout=10)

    events = all_events(admin)
    new = events[: events.index(newest_before[0])] if newest_before else events
    assigned = f"projects/{project}/{provider.name}"
    assert [(e.method.rsplit("/", 1)[1], e.resource) for e in reversed(new)] == [
        ("CreateProvider", provider.name),
        ("UpdateProvider", provider.name),
        ("ValidateProvider", provider.name),
        ("AssignProvider", assigned),
        ("UnassignProvider", assigned),
        ("DeleteProvider", provider.name),
        ("CreateToken", token_name),
        ("DeleteToken", token_name),
    ]
    assert {e.actor for e in new} == {admin_name}
    assert all(e.create_time.seconds and e.request_id and e.name.startswith("auditEvents/") for e in new)
    assert "changed api_key (rotated), model" in [e.summary for e in new]
    audit_lines = [r for r in caplog.records if r.name == "synthtasks.audit"]
    assert len(audit_lines) == len(new)
    assert all(r.actor == admin_name for r in audit_lines)
    assert not any(secret in r.getMessage() or secret in str(r.__dict__) for r in caplog.records)


def test_access_log_lines_name_the_token_and_project_never_the_secret(stack, caplog):
    project = new_project()
    secret, token_name = project_token(stack, project)
    clients = stack.clients(secret)
    caplog.set_level(logging.INFO, logger="synthtasks.access")
    clients.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent=f"projects/{project}"), timeout=10)
    with pytest.raises(grpc.RpcError):
        clients.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent="projects/not-mine"), timeout=10)

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "synthtasks.access" and "ListStagedTexts" in r.method]

    # The caller may see its status a moment before the line of that call is written.
    deadline = time.monotonic() + 10
    while len(lines()) < 3:
        assert time.monotonic() < deadline, [(r.method, r.code) for r in lines()]
        time.sleep(0.01)
    # The gateway's line and the task store's (it learns the caller from the gateway).
    allowed = [r for r in lines() if r.code == "OK"]
    assert len(allowed) == 2
    assert all(r.token == token_name and r.project == project for r in allowed)
    denied = [r for r in lines() if r.code == "PERMISSION_DENIED"]
    assert [(r.token, r.project) for r in denied] == [(token_name, "not-mine")]
    assert not any(secret in str(r.__dict__) for r in caplog.records)


def test_only_admins_list_audit_events(stack):
    project = new_project()
    member = stack.clients(project_token(stack, project)[0])
    with pytest.raises(grpc.RpcError) as raised:
        member.audit.ListAuditEvents(audit_pb.ListAuditEventsRequest(), timeout=10)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stack.admin().audit.ListAuditEvents(audit_pb.ListAuditEventsRequest(page_size=1), timeout=10).audit_events
