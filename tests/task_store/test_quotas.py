"""Project quotas, where jobs are recorded: a job past a quota is refused with
RESOURCE_EXHAUSTED and a QuotaFailure naming it (plus a RetryInfo for the per-minute
rate), nothing is written, other projects are unaffected, a retried creation of an
existing job is never refused, and usage shows in GetProjectQuota and in metrics."""

from __future__ import annotations

import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import generation_service_pb2_grpc

from services.runtime.channels import internal_channel
from services.task_store.config import Settings
from services.task_store.quotas import QuotaUsageCollector
from services.task_store.repository.jobs import JobRepository
from services.task_store.server import build_server
from tests.rich_status import error_info_reason, quota_failure
from tests.task_store.builders import append, create_job, row_counts, text

RATE_LIMITED_PROJECT = f"rate-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def settings(make_database) -> Settings:
    return Settings(
        internal_token=secrets.token_urlsafe(24),
        database_url=make_database("quotas"),
        metrics_port=0,
        quota_texts_queued_or_running=100,
        quota_jobs_running=3,
        quota_jobs_created_per_minute=5,
        # One project's own values: many jobs may run, only the rate limits it.
        project_quotas={RATE_LIMITED_PROJECT: {"jobs_running": 0, "texts_queued_or_running": 0}},
    )


@pytest.fixture(scope="module")
def stubs(settings):
    built = build_server(settings, address="127.0.0.1:0")
    channel = internal_channel(f"127.0.0.1:{built.port}", settings)
    yield (
        job_store_service_pb2_grpc.JobStoreServiceStub(channel),
        generation_service_pb2_grpc.GenerationServiceStub(channel),
    )
    channel.close()
    built.stop(grace=1.0)


@pytest.fixture(scope="module")
def db(settings, stubs):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def project() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, raised.value.details()
    assert error_info_reason(raised.value) == "QUOTA_EXCEEDED"
    return raised.value


def quota_usage(generation, project: str) -> dict[str, tuple[int, int]]:
    reply = generation.GetProjectQuota(generation_pb2.GetProjectQuotaRequest(name=f"projects/{project}/quota"))
    assert reply.project_quota.name == f"projects/{project}/quota"
    return {q.quota: (q.usage, q.limit) for q in reply.project_quota.quotas}


def test_a_job_past_the_running_jobs_quota_is_refused_and_nothing_is_written(stubs, db, project):
    jobs, _ = stubs
    for _ in range(3):
        create_job(jobs, project, text_count=2)
    before = row_counts(db, project)
    error = refused(lambda: create_job(jobs, project, text_count=2))
    violations, retry = quota_failure(error)
    assert violations == [(f"projects/{project}", "jobs-running: limit 3, in use 3, this job would make it 4")]
    assert retry is None  # only a job ending frees a slot
    assert row_counts(db, project) == before
    # Another project is not affected by this one's quota.
    create_job(jobs, f"{project}-other", text_count=2)


def test_finished_jobs_free_their_slots(stubs, project):
    jobs, _ = stubs
    running = [create_job(jobs, project, text_count=1) for _ in range(3)]
    refused(lambda: create_job(jobs, project, text_count=1))
    append(jobs, running[0].name, text(0, "done"))  # its only slot: the job ends
    create_job(jobs, project, text_count=1)


def test_a_job_asking_for_more_texts_than_the_quota_leaves_is_refused(stubs, project):
    jobs, generation = stubs
    create_job(jobs, project, text_count=60)
    error = refused(lambda: create_job(jobs, project, text_count=41))
    assert "texts-queued-or-running: limit 100, in use 60" in quota_failure(error)[0][0][1]
    create_job(jobs, project, text_count=40)  # exactly up to the limit fits
    assert quota_usage(generation, project)["texts-queued-or-running"] == (100, 100)


def test_the_per_minute_quota_comes_with_a_retry_delay(stubs):
    jobs, generation = stubs
    for _ in range(5):
        create_job(jobs, RATE_LIMITED_PROJECT, text_count=1)
    assert quota_usage(generation, RATE_LIMITED_PROJECT)["jobs-running"] == (5, 0)
    error = refused(lambda: create_job(jobs, RATE_LIMITED_PROJECT, text_count=1))
    violations, retry = quota_failure(error)
    assert [v[1].split(":")[0] for v in violations] == ["jobs-created-per-minute"]
    assert retry is not None and 0 < retry <= 60


def test_a_retried_creation_of_an_existing_job_is_never_refused(stubs, project):
    jobs, _ = stubs
    first = create_job(jobs, project, text_count=1, request_id="same")
    for _ in range(2):
        create_job(jobs, project, text_count=1)
    refused(lambda: create_job(jobs, project, text_count=1, request_id="new"))
    assert create_job(jobs, project, text_count=1, request_id="same").name == first.name


def test_concurrent_creations_never_slip_past_a_quota(stubs, db, project):
    jobs, _ = stubs

    def attempt(_: int) -> bool:
        try:
            create_job(jobs, project, text_count=1)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count(True) == 3
    assert row_counts(db, project)["jobs"] == 3


def test_usage_is_visible_to_the_project_and_in_metrics(stubs, settings, project):
    jobs, generation = stubs
    create_job(jobs, project, text_count=7)
    create_job(jobs, project, text_count=5)
    assert quota_usage(generation, project) == {
        "texts-queued-or-running": (12, 100),
        "jobs-running": (2, 3),
        "jobs-created-per-minute": (2, 5),
    }
    registry = CollectorRegistry()
    with ConnectionPool(settings.database_url, min_size=1, max_size=1) as pool:
        registry.register(QuotaUsageCollector(JobRepository(pool).quota_usage_by_project, settings.quota_policy()))
        labels = {"project": project, "quota": "texts-queued-or-running"}
        assert registry.get_sample_value("synthtasks_project_quota_usage", labels) == 12
        assert registry.get_sample_value("synthtasks_project_quota_limit", labels) == 100
