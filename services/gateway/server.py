"""Wiring of the gateway: channels to the internal services, Redis, servicers, on the
asyncio server (runtime/aio_server.py says why)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta

import grpc
import redis
from synthtasks.internal.v1 import auth_service_pb2_grpc, job_store_service_pb2_grpc
from synthtasks.v1 import (
    audit_service_pb2_grpc,
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)

from services.gateway.auth import Authenticator
from services.gateway.config import Settings
from services.gateway.job_launcher import JobLauncher
from services.gateway.metrics import GENERATION_QUEUE_RANGES
from services.gateway.servicer import (
    AuditGateway,
    Deadlines,
    GenerationGateway,
    ProviderGateway,
    StreamRelay,
    TaskGateway,
    TokenGateway,
)
from services.gateway.stalled_jobs import StalledJobSweeper
from services.gateway.streams import StreamLimiter
from services.generation_queue.backlog import Backlog
from services.runtime.aio_server import AioBuiltServer, create_aio_server
from services.runtime.channels import RELAY_OPTIONS, internal_aio_channel, internal_channel
from services.runtime.server import Registration

SERVICE = "gateway"
log = logging.getLogger(__name__)


class StreamingChannel:
    """The asyncio channel to the task store for the relayed streams; it must be made
    on the server's event loop, so it is opened there (`open`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channel: grpc.aio.Channel | None = None

    def open(self) -> None:
        self._channel = internal_aio_channel(
            self._settings.task_store_address, self._settings, extra_options=RELAY_OPTIONS
        )
        self.jobs = generation_service_pb2_grpc.GenerationServiceStub(self._channel)
        self.tasks = task_service_pb2_grpc.TaskServiceStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def build_server(settings: Settings, address: str | None = None) -> AioBuiltServer:
    registry = internal_channel(settings.registry_address, settings)
    task_store = internal_channel(settings.task_store_address, settings)
    redis_client = redis.Redis.from_url(settings.redis_url)
    backlog = Backlog(redis_client, settings.redis_namespace)
    export_queue_sizes(backlog)
    deadlines = Deadlines(settings.downstream_timeout_seconds, settings.validation_timeout_seconds)
    auth = Authenticator(
        auth_service_pb2_grpc.AuthServiceStub(registry),
        cache_seconds=settings.auth_cache_seconds,
        timeout=settings.downstream_timeout_seconds,
        failures_per_minute=settings.auth_failures_per_minute,
        failure_burst=settings.auth_failure_burst,
    )
    streaming = StreamingChannel(settings)
    streams = StreamRelay(
        auth,
        StreamLimiter(
            per_token=settings.max_streams_per_token,
            per_project=settings.max_streams_per_project,
            total=settings.max_streams,
        ),
        settings.max_stream_seconds,
    )
    providers = provider_service_pb2_grpc.ProviderServiceStub(registry)
    job_store = job_store_service_pb2_grpc.JobStoreServiceStub(task_store)
    launcher = JobLauncher(
        providers=providers,
        job_store=job_store,
        backlog=backlog,
        redis_client=redis_client,
        redis_namespace=settings.redis_namespace,
        max_text_count=settings.max_text_count,
        max_prompt_chars=settings.max_prompt_chars,
        slots_per_message=settings.slots_per_message,
    )
    built = create_aio_server(
        address or settings.listen_address,
        [
            Registration(
                ProviderGateway(auth, providers, deadlines),
                provider_service_pb2_grpc.add_ProviderServiceServicer_to_server,
                "synthtasks.v1.ProviderService",
            ),
            Registration(
                TokenGateway(auth, token_service_pb2_grpc.TokenServiceStub(registry), deadlines),
                token_service_pb2_grpc.add_TokenServiceServicer_to_server,
                "synthtasks.v1.TokenService",
            ),
            Registration(
                AuditGateway(auth, audit_service_pb2_grpc.AuditServiceStub(registry), deadlines),
                audit_service_pb2_grpc.add_AuditServiceServicer_to_server,
                "synthtasks.v1.AuditService",
            ),
            Registration(
                GenerationGateway(
                    auth,
                    generation_service_pb2_grpc.GenerationServiceStub(task_store),
                    lambda: streaming.jobs,
                    launcher,
                    deadlines,
                    streams,
                    timedelta(seconds=settings.stalled_job_seconds),
                ),
                generation_service_pb2_grpc.add_GenerationServiceServicer_to_server,
                "synthtasks.v1.GenerationService",
            ),
            Registration(
                TaskGateway(
                    auth, task_service_pb2_grpc.TaskServiceStub(task_store), lambda: streaming.tasks, deadlines, streams
                ),
                task_service_pb2_grpc.add_TaskServiceServicer_to_server,
                "synthtasks.v1.TaskService",
            ),
        ],
        service=SERVICE,
        max_workers=settings.max_workers,
        on_loop=streaming.open,
        listener_tls=settings.public_listener_tls(),
    )
    built.on_loop_stop.append(streaming.close)
    sweeper = StalledJobSweeper(
        job_store=job_store,
        launcher=launcher,
        stalled_for=timedelta(seconds=settings.stalled_job_seconds),
        interval_seconds=settings.stalled_job_check_seconds,
        timeout=settings.downstream_timeout_seconds,
    )
    sweeper.start()
    built.on_stop.extend([sweeper.stop, registry.close, task_store.close, redis_client.close])
    return built


def export_queue_sizes(backlog: Backlog) -> None:
    """The backlog and queue sizes as gauges, read from Redis when Prometheus scrapes."""

    def reading(size: Callable[[], int]) -> Callable[[], float]:
        def read() -> float:
            try:
                return float(size())
            except redis.RedisError as error:
                # An unknown size, not a failed scrape: the other metrics still matter most.
                log.warning("could not read the queue size", extra={"error": type(error).__name__})
                return math.nan

        return read

    GENERATION_QUEUE_RANGES.labels("backlog").set_function(reading(backlog.size))
    GENERATION_QUEUE_RANGES.labels("queue").set_function(reading(backlog.queue_length))
