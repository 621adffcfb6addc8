"""When Postgres drops the service's connections (a restart, a failover, an operator's
pg_terminate_backend), the next calls are served on fresh connections; while the
database refuses connections, callers get UNAVAILABLE (retry), never INTERNAL, and the
replica reports itself not ready (but alive) until the database answers again."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import generation_service_pb2_grpc

from services.runtime.channels import internal_channel
from services.runtime.readiness import CHECK_INTERVAL_SECONDS, READINESS_SERVICE
from services.task_store.config import Settings
from services.task_store.server import build_server
from tests.rich_status import error_info_reason
from tests.task_store.builders import create_job


@pytest.fixture
def own_task_store(make_database, infra) -> Iterator[tuple[Settings, grpc.Channel]]:
    """A task store on a database of its own: this test cuts its connections."""
    settings = Settings(internal_token=secrets.token_urlsafe(24), database_url=make_database("restart"), metrics_port=0)
    built = build_server(settings, address="127.0.0.1:0")
    try:
        with internal_channel(f"127.0.0.1:{built.port}", settings) as channel:
            yield settings, channel
    finally:
        _allow_connections(infra.postgres_url, _database(settings), allowed=True)
        built.stop(grace=0.5)


def _database(settings: Settings) -> str:
    return conninfo_to_dict(settings.database_url)["dbname"]


def _terminate_backends(server_url: str, database: str) -> int:
    with psycopg.connect(server_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def _allow_connections(server_url: str, database: str, *, allowed: bool) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), sql.SQL("true" if allowed else "false")
            )
        )


def _list_jobs(channel: grpc.Channel, project: str):
    stub = generation_service_pb2_grpc.GenerationServiceStub(channel)
    return stub.ListGenerationJobs(generation_pb2.ListGenerationJobsRequest(parent=f"projects/{project}"), timeout=30)


def test_calls_after_postgres_terminated_every_connection_are_served(own_task_store, infra):
    settings, channel = own_task_store
    project = f"p-{uuid.uuid4().hex[:12]}"
    create_job(job_store_service_pb2_grpc.JobStoreServiceStub(channel), project)

    assert _terminate_backends(infra.postgres_url, _database(settings)) >= 1

    # More calls than the pool holds connections: each dead one is replaced, none is used.
    for _ in range(settings.pool_min_size + 2):
        assert len(_list_jobs(channel, project).generation_jobs) == 1


def test_while_the_database_refuses_connections_calls_are_unavailable_then_served_again(own_task_store, infra):
    settings, channel = own_task_store
    project = f"p-{uuid.uuid4().hex[:12]}"
    database = _database(settings)

    _allow_connections(infra.postgres_url, database, allowed=False)
    _terminate_backends(infra.postgres_url, database)
    with pytest.raises(grpc.RpcError) as raised:
        _list_jobs(channel, project)
    _allow_connections(infra.postgres_url, database, allowed=True)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info_reason(raised.value) == "DATABASE_UNAVAILABLE"
    deadline = time.monotonic() + 60
    while True:
        try:
            assert list(_list_jobs(channel, project).generation_jobs) == []
            return
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert time.monotonic() < deadline, "not served again within 60 s of the database coming back"
            time.sleep(0.2)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(channel: grpc.Channel, service: str) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _wait_for_health(channel: grpc.Channel, service: str, status: int) -> None:
    deadline = time.monotonic() + 3 * CHECK_INTERVAL_SECONDS + 10
    while _health(channel, service) != status:
        assert time.monotonic() < deadline, f"{service or 'overall'} did not become {status}"
        time.sleep(0.2)


def test_readiness_follows_the_database_while_liveness_stays_serving(own_task_store, infra):
    settings, channel = own_task_store
    database = _database(settings)
    assert _health(channel, READINESS_SERVICE) == SERVING

    _allow_connections(infra.postgres_url, database, allowed=False)
    _terminate_backends(infra.postgres_url, database)
    _wait_for_health(channel, READINESS_SERVICE, NOT_SERVING)
    assert _health(channel, "") == SERVING  # liveness: the process itself is fine

    _allow_connections(infra.postgres_url, database, allowed=True)
    _wait_for_health(channel, READINESS_SERVICE, SERVING)
