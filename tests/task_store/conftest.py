"""One task store per test session, on a fresh database, called over a real channel
with the internal credential. Tests isolate themselves by using their own project."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2_grpc, task_service_pb2_grpc

from services.runtime.channels import internal_channel
from services.runtime.server import BuiltServer
from services.task_store.config import Settings
from services.task_store.server import build_server


@pytest.fixture(scope="package")
def settings(make_database) -> Settings:
    return Settings(
        internal_token=secrets.token_urlsafe(24),
        database_url=make_database("tasks"),
        metrics_port=0,
        # These tests are about bookkeeping and create many jobs per project; quotas
        # have their own server in test_quotas.py.
        quota_texts_queued_or_running=0,
        quota_jobs_running=0,
        quota_jobs_created_per_minute=0,
    )


@pytest.fixture(scope="package")
def task_store(settings: Settings) -> Iterator[BuiltServer]:
    built = build_server(settings, address="127.0.0.1:0")
    yield built
    built.stop(grace=1.0)


@pytest.fixture(scope="package")
def address(task_store: BuiltServer) -> str:
    return f"127.0.0.1:{task_store.port}"


@pytest.fixture(scope="package")
def channel(address: str, settings: Settings) -> Iterator[grpc.Channel]:
    opened = internal_channel(address, settings)
    yield opened
    opened.close()


@pytest.fixture(scope="package")
def jobs(channel: grpc.Channel) -> job_store_service_pb2_grpc.JobStoreServiceStub:
    return job_store_service_pb2_grpc.JobStoreServiceStub(channel)


@pytest.fixture(scope="package")
def generation(channel: grpc.Channel) -> generation_service_pb2_grpc.GenerationServiceStub:
    return generation_service_pb2_grpc.GenerationServiceStub(channel)


@pytest.fixture(scope="package")
def tasks(channel: grpc.Channel) -> task_service_pb2_grpc.TaskServiceStub:
    return task_service_pb2_grpc.TaskServiceStub(channel)


@pytest.fixture(scope="package")
def db(settings: Settings, task_store: BuiltServer) -> Iterator[psycopg.Connection]:
    """A direct connection for checking what was (not) written."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"
