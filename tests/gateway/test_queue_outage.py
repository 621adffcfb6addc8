"""While Redis (the job queue and stop flags) cannot be reached, the calls that need it
are answered UNAVAILABLE, which clients retry, never INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import generation_service_pb2_grpc

from services.gateway.config import Settings as GatewaySettings
from services.gateway.server import build_server
from tests.rich_status import error_info_reason
from tests.stack import bearer


@pytest.fixture
def gateway_without_redis(stack):
    """A second gateway on the stack's registry and task store whose Redis URL points at
    a loopback port nothing listens on."""
    settings = GatewaySettings(
        internal_token=stack.registry_settings.internal_token,
        registry_address=stack.registry_address,
        task_store_address=stack.task_store_address,
        redis_url="redis://127.0.0.1:1/0",
        redis_namespace=stack.gateway_settings.redis_namespace,
        metrics_port=0,
    )
    built = build_server(settings, "127.0.0.1:0")
    channel = grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{built.port}"), bearer(stack.admin_token))
    yield generation_service_pb2_grpc.GenerationServiceStub(channel)
    channel.close()
    built.stop(0)


def test_a_cancel_while_redis_is_down_is_unavailable_and_cancels_nothing(generation, gateway_without_redis):
    project = generation.new_project()
    generation.provider(project, "compatible")
    job = generation.start(project, 2)

    with pytest.raises(grpc.RpcError) as raised:
        gateway_without_redis.CancelGenerationJob(gen_pb.CancelGenerationJobRequest(name=job.name), timeout=30)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info_reason(raised.value) == "QUEUE_UNAVAILABLE"
    assert generation.get(job.name).state == gen_pb.GENERATION_JOB_STATE_QUEUED
    # The control: the gateway that reaches Redis cancels it.
    assert generation.cancel(job.name).state == gen_pb.GENERATION_JOB_STATE_CANCELLED
