"""The task store as a server: internal calls only, health, and its command line."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2
from synthtasks.v1 import task_service_pb2_grpc

from services.runtime.channels import internal_channel, raw_channel
from services.runtime.config import TlsSettings
from services.runtime.migrations import migrate
from services.task_store.server import MIGRATIONS
from tests.task_store.builders import PROVIDER, fails_with


def test_a_call_without_the_internal_token_is_unauthenticated(address, db, project):
    with raw_channel(address, TlsSettings()) as channel:
        store = job_store_service_pb2_grpc.JobStoreServiceStub(channel)
        with fails_with(grpc.StatusCode.UNAUTHENTICATED):
            store.CreateJob(
                job_store_pb2.CreateJobRequest(
                    parent=f"projects/{project}",
                    generation_job=generation_pb2.GenerationJob(
                        prompt="p", temperature=1, text_count=1, provider=PROVIDER
                    ),
                )
            )
        with fails_with(grpc.StatusCode.UNAUTHENTICATED):
            list(
                task_service_pb2_grpc.TaskServiceStub(channel).ExportStagedTexts(
                    task_pb2.ExportStagedTextsRequest(parent=f"projects/{project}")
                )
            )

    assert db.execute("SELECT count(*) FROM generation_jobs WHERE project = %s", (project,)).fetchone()[0] == 0


def test_a_call_with_a_wrong_token_is_unauthenticated(address, settings, project):
    wrong = settings.model_copy(update={"internal_token": SecretStr("not-the-token")})

    with internal_channel(address, wrong) as channel, fails_with(grpc.StatusCode.UNAUTHENTICATED):
        task_service_pb2_grpc.TaskServiceStub(channel).ListTasks(
            task_pb2.ListTasksRequest(parent=f"projects/{project}")
        )


def test_health_reports_serving_for_the_server_and_each_service(address):
    with raw_channel(address, TlsSettings()) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in (
            "",
            "synthtasks.v1.GenerationService",
            "synthtasks.v1.TaskService",
            "synthtasks.internal.v1.JobStoreService",
        ):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def test_jobs_are_created_through_the_gateway_not_the_public_create(generation, project):
    with fails_with(grpc.StatusCode.UNIMPLEMENTED, reason="UNIMPLEMENTED") as refused:
        generation.CreateGenerationJob(generation_pb2.CreateGenerationJobRequest(parent=f"projects/{project}"))
    assert "gateway" in refused.message


def test_migrating_again_applies_nothing(settings, task_store):
    assert migrate(settings.database_url, MIGRATIONS) == []


def test_the_migrate_command_creates_and_migrates_a_database(make_database):
    url = make_database("tasks_cli")
    environment = {**os.environ, "SYNTHTASKS_INTERNAL_TOKEN": "t", "SYNTHTASKS_TASK_STORE_DATABASE_URL": url}

    finished = subprocess.run(
        [sys.executable, "-m", "services.task_store", "migrate"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 0, finished.stderr
    with psycopg.connect(url) as conn:
        applied = [name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    shipped = sorted(f.name for f in resources.files(MIGRATIONS).iterdir() if f.name.endswith(".sql"))
    assert applied == shipped and applied[0] == "0001_init.sql"
