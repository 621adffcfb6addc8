"""Quotas through the public API: a flood of job creations past a project's quota is
refused with RESOURCE_EXHAUSTED and a QuotaFailure and enqueues nothing, while the jobs
within the quota run their course; the project reads its quotas; a job may name only the
models the provider allows."""

from __future__ import annotations

import grpc
import pytest
import redis
from google.protobuf import field_mask_pb2
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb

from services.generation_queue.backlog import Backlog
from tests.gateway.tenant_harness import default_provider, new_project, own_stack, project_token, start_job
from tests.rich_status import error_info_reason, quota_failure

PER_MINUTE = 10


@pytest.fixture(scope="module")
def stack(make_database, infra, redis_namespace):
    with own_stack(
        make_database,
        infra,
        redis_namespace,
        task_store_overrides={"quota_jobs_created_per_minute": PER_MINUTE, "quota_jobs_running": 0},
    ) as running:
        yield running


def queue_length(stack) -> int:
    """Ranges enqueued and not yet taken by a worker: in the fair backlog or the Dramatiq queue."""
    client = redis.Redis.from_url(stack.gateway_settings.redis_url)
    try:
        backlog = Backlog(client, stack.gateway_settings.redis_namespace)
        return backlog.size() + backlog.queue_length()
    finally:
        client.close()


def test_a_flood_of_job_creations_past_the_quota_is_refused_and_enqueues_nothing(stack):
    project = new_project()
    default_provider(stack, project)
    clients = stack.clients(project_token(stack, project)[0])
    queued_before = queue_length(stack)

    created, refusals = [], []
    for _ in range(200):
        try:
            created.append(start_job(clients, project, text_count=3))
        except grpc.RpcError as error:
            refusals.append(error)

    assert len(created) == PER_MINUTE  # within the quota everything works
    assert len(refusals) == 200 - PER_MINUTE
    for error in refusals:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info_reason(error) == "QUOTA_EXCEEDED"
        violations, retry = quota_failure(error)
        assert violations[0][0] == f"projects/{project}"
        assert violations[0][1].startswith("jobs-created-per-minute")
        assert retry is not None and 0 < retry <= 60
    # One message per accepted job (3 slots fit one), none for a refused one.
    assert queue_length(stack) - queued_before == PER_MINUTE
    listed = clients.generation.ListGenerationJobs(
        gen_pb.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=1000), timeout=10
    ).generation_jobs
    assert sorted(job.name for job in listed) == sorted(job.name for job in created)

    quota = clients.generation.GetProjectQuota(
        gen_pb.GetProjectQuotaRequest(name=f"projects/{project}/quota"), timeout=10
    ).project_quota
    usage = {q.quota: (q.usage, q.limit) for q in quota.quotas}
    assert usage["jobs-created-per-minute"] == (PER_MINUTE, PER_MINUTE)
    assert usage["texts-queued-or-running"][0] == 3 * PER_MINUTE


def test_a_job_may_name_only_the_models_its_provider_allows(stack):
    project = new_project()
    provider = default_provider(stack, project)
    clients = stack.clients(project_token(stack, project)[0])

    assert start_job(clients, project, model="gpt-4o-mini").model == "gpt-4o-mini"  # the default model
    with pytest.raises(grpc.RpcError) as raised:
        start_job(clients, project, model="o1-pro")
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info_reason(raised.value) == "MODEL_NOT_ALLOWED"

    stack.admin().providers.UpdateProvider(
        pb.UpdateProviderRequest(
            provider=pb.Provider(name=provider.name, allowed_models=["o1-pro"]),
            update_mask=field_mask_pb2.FieldMask(paths=["allowed_models"]),
        ),
        timeout=10,
    )
    assert start_job(clients, project, model="o1-pro").model == "o1-pro"
