"""Helpers for the tests of one project's share of a deployment (quotas, stream bounds,
auth failures, audit): stacks of their own with the settings under test, project tokens,
providers on the fake LLM, and latency samples."""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.runtime.channels import internal_channel
from tests.stack import Clients, Stack, running_stack

# The latency bound the issue sets for calls made while one project loads the system.
# Measured per call round trip on loopback; generous so that a loaded 2-core machine
# passes, tight enough that a call queued behind streams (seconds) fails.
P99_BOUND_SECONDS = 0.5


@contextlib.contextmanager
def own_stack(make_database, infra, redis_namespace: str, **settings: Any) -> Iterator[Stack]:
    """A stack of the test module's own (settings that the shared stack must not have)."""
    with running_stack(
        make_database=make_database,
        redis_url=infra.redis_url,
        redis_namespace=f"{redis_namespace}-{uuid.uuid4().hex[:6]}",
        **settings,
    ) as stack:
        yield stack


def new_project() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def project_token(stack: Stack, project: str) -> tuple[str, str]:
    """A new project token's (secret, resource name)."""
    reply = stack.admin().tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(
                role=token_pb.TOKEN_ROLE_PROJECT, projects=[f"projects/{project}"], display_name="tenant test"
            )
        ),
        timeout=10,
    )
    return reply.secret, reply.token.name


def default_provider(stack: Stack, project: str, **fields: Any) -> pb.Provider:
    """An OpenAI-compatible provider on the fake LLM, the project's default."""
    admin = stack.admin()
    created = admin.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=pb.Provider(
                display_name=f"tenant-{uuid.uuid4().hex[:8]}",
                kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                endpoint=stack.fake_llm.openai_base_url,
                model="gpt-4o-mini",
                **fields,
            )
        ),
        timeout=10,
    ).provider
    admin.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project}", provider=created.name, default=True), timeout=10
    )
    return created


def start_job(clients: Clients, project: str, text_count: int = 3, **fields: Any) -> gen_pb.GenerationJob:
    job = gen_pb.GenerationJob(prompt="Write one sentence.", text_count=text_count, temperature=0.5, **fields)
    return clients.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(
            parent=f"projects/{project}", generation_job=job, request_id=uuid.uuid4().hex
        ),
        timeout=10,
    ).generation_job


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(len(ordered) * 0.99) - 1)]


def health_check(stack: Stack) -> Callable[[], object]:
    stub = health_pb2_grpc.HealthStub(stack.clients(None).channel)

    def check() -> None:
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    return check


def fill(stack: Stack, project: str, count: int, text_bytes: int = 300) -> None:
    """One job of `count` staged texts of about `text_bytes`, written as workers would."""
    channel = internal_channel(stack.task_store_address, stack.task_store_settings)
    jobs = job_store_service_pb2_grpc.JobStoreServiceStub(channel)
    job = jobs.CreateJob(
        store_pb.CreateJobRequest(
            parent=f"projects/{project}",
            generation_job=gen_pb.GenerationJob(
                prompt="Write a sentence.", text_count=count, temperature=0.5, provider="providers/bulk"
            ),
        ),
        timeout=30,
    ).generation_job
    filler = "lorem ipsum dolor sit amet " * (text_bytes // 27 + 1)
    for first in range(0, count, 1000):
        jobs.AppendResults(
            store_pb.AppendResultsRequest(
                name=job.name,
                results=[
                    store_pb.SlotResult(slot=slot, text=store_pb.GeneratedText(text=f"{slot} {filler}", model="m"))
                    for slot in range(first, min(first + 1000, count))
                ],
            ),
            timeout=60,
        )
    channel.close()
