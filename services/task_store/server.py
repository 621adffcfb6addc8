"""Wiring of the task store: migrations, connection pool, job event listener,
servicers and the gRPC server (internal calls only)."""

from __future__ import annotations

from prometheus_client import REGISTRY
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2_grpc, task_service_pb2_grpc

from services.runtime.database import create_pool, database_answers
from services.runtime.migrations import migrate
from services.runtime.readiness import ReadinessWatch
from services.runtime.server import BuiltServer, Registration, create_server
from services.task_store.config import Settings
from services.task_store.quotas import QuotaUsageCollector
from services.task_store.repository.entity_balance import EntityBalanceRepository
from services.task_store.repository.jobs import JobRepository
from services.task_store.repository.staged_texts import StagedTextRepository
from services.task_store.repository.tasks import TaskRepository
from services.task_store.servicers.generation import GenerationServicer
from services.task_store.servicers.job_store import JobStoreServicer
from services.task_store.servicers.tasks import TaskServicer
from services.task_store.watch import JobEventHub

SERVICE = "task-store"
MIGRATIONS = "services.task_store.migrations"


def build_server(settings: Settings, address: str | None = None) -> BuiltServer:
    """Migrate the database, then start serving on `address` (default: the settings').

    `stop()` on the result drains calls, then closes the listener and the pool."""
    migrate(settings.database_url, MIGRATIONS)
    pool = create_pool(settings.database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size)
    events = JobEventHub(settings.database_url)
    try:
        events.start()
        jobs = JobRepository(pool)
        quota_policy = settings.quota_policy()
        built = create_server(
            address or settings.listen_address,
            [
                Registration(
                    GenerationServicer(jobs, events, quota_policy, EntityBalanceRepository(pool)),
                    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server,
                    "synthtasks.v1.GenerationService",
                ),
                Registration(
                    TaskServicer(StagedTextRepository(pool), TaskRepository(pool)),
                    task_service_pb2_grpc.add_TaskServiceServicer_to_server,
                    "synthtasks.v1.TaskService",
                ),
                Registration(
                    JobStoreServicer(jobs, quota_policy),
                    job_store_service_pb2_grpc.add_JobStoreServiceServicer_to_server,
                    "synthtasks.internal.v1.JobStoreService",
                ),
            ],
            service=SERVICE,
            settings=settings,
            internal_only=True,
            max_workers=settings.max_workers,
            max_streams=settings.max_streams,
        )
    except BaseException:
        events.close()
        pool.close()
        raise
    # Watch streams still open when the grace period ends are cancelled; the listener
    # goes after them, the pool last.
    built.on_stop.extend([events.close, pool.close])
    readiness = ReadinessWatch(built.health, database_answers(pool))
    readiness.start()
    built.on_stop.insert(0, readiness.stop)  # first: it uses the pool
    if settings.metrics_port:
        # Only a served registry needs it (tests run many task stores, metrics off).
        collector = QuotaUsageCollector(jobs.quota_usage_by_project, quota_policy)
        REGISTRY.register(collector)
        built.on_stop.append(lambda: REGISTRY.unregister(collector))
    return built
