"""A flood of unknown bearer tokens from one address costs the registry a bounded number
of look-ups: past the address's failure budget the gateway answers RESOURCE_EXHAUSTED
with a RetryInfo by itself. Valid callers are unaffected, even when every one of their
calls is checked with the registry again."""

from __future__ import annotations

import secrets
import time

import grpc
import pytest
from prometheus_client import REGISTRY
from synthtasks.v1 import task_service_pb2 as task_pb

from tests.gateway.tenant_harness import new_project, own_stack, project_token
from tests.rich_status import error_info_reason, quota_failure

BURST = 20
PER_MINUTE = 30


@pytest.fixture(scope="module")
def stack(make_database, infra, redis_namespace):
    # No identity cache: every valid call below goes to the registry as well.
    with own_stack(
        make_database,
        infra,
        redis_namespace,
        auth_cache_seconds=0,
        auth_failure_burst=BURST,
        auth_failures_per_minute=PER_MINUTE,
    ) as running:
        yield running


def registry_lookups() -> float:
    return sum(
        REGISTRY.get_sample_value(
            "synthtasks_grpc_requests_total",
            {
                "service": "provider-registry",
                "method": "/synthtasks.internal.v1.AuthService/AuthenticateToken",
                "code": code,
            },
        )
        or 0
        for code in ("OK", "INVALID_ARGUMENT")
    )


def test_a_flood_of_unknown_tokens_is_throttled_and_valid_callers_carry_on(stack):
    project = new_project()
    valid = stack.clients(project_token(stack, project)[0])
    request = task_pb.ListStagedTextsRequest(parent=f"projects/{project}")
    valid.tasks.ListStagedTexts(request, timeout=10)  # a caller known before the flood

    lookups_before = registry_lookups()
    started = time.monotonic()
    codes: dict[grpc.StatusCode, int] = {}
    valid_calls = 0
    for attempt in range(500):
        intruder = stack.clients(f"st_{secrets.token_urlsafe(32)}")
        try:
            intruder.tasks.ListStagedTexts(request, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                assert error_info_reason(error) == "AUTH_FAILURES_RATE_LIMITED"
                violations, retry = quota_failure(error)
                assert violations[0][0] == "clients/ipv4:127.0.0.1"
                assert retry is not None and retry > 0
        codes[code] = codes.get(code, 0) + 1
        intruder.channel.close()
        if attempt % 25 == 0:
            valid.tasks.ListStagedTexts(request, timeout=10)  # raises if refused
            valid_calls += 1
    elapsed = time.monotonic() - started

    refilled = int(elapsed * PER_MINUTE / 60) + 1
    assert codes.get(grpc.StatusCode.OK, 0) == 0
    assert codes[grpc.StatusCode.UNAUTHENTICATED] <= BURST + refilled
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 500 - BURST - refilled
    # The registry saw the budget's worth of unknown tokens plus the valid caller's 20 checks.
    assert registry_lookups() - lookups_before <= BURST + refilled + valid_calls
    assert valid_calls == 20
