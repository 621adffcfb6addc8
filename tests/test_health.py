"""Every service answers gRPC health checks and reflection; internal services refuse
calls that lack the internal credential."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from synthtasks.internal.v1 import credential_service_pb2, credential_service_pb2_grpc

from services.runtime.healthcheck import check


@pytest.mark.parametrize("service", ["gateway", "registry", "task_store"])
def test_each_service_reports_serving(stack, service):
    address = getattr(stack, f"{service}_address")
    assert check(address)
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in getattr(stack, service).service_names:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("service", ["gateway", "registry", "task_store"])
def test_each_service_lists_its_services_through_reflection(stack, service):
    with grpc.insecure_channel(getattr(stack, f"{service}_address")) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        listed = {s.name for reply in replies for s in reply.list_services_response.service}
    assert set(getattr(stack, service).service_names) <= listed


@pytest.mark.parametrize("token", [None, "wrong-internal-token"])
def test_internal_services_refuse_calls_without_the_internal_credential(stack, token):
    metadata = [("x-synthtasks-internal-token", token)] if token else []
    with grpc.insecure_channel(stack.registry_address) as channel:
        stub = credential_service_pb2_grpc.CredentialServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetProviderCredential(
                credential_service_pb2.GetProviderCredentialRequest(name="providers/any"), metadata=metadata, timeout=5
            )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_healthcheck_command_fails_for_a_port_nobody_serves():
    assert not check("127.0.0.1:1", timeout=1)
