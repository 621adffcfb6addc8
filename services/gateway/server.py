"""Wiring of the gateway: channels to the internal services, Redis, servicers."""

from __future__ import annotations

from datetime import timedelta

import redis
from synthtasks.internal.v1 import auth_service_pb2_grpc, job_store_service_pb2_grpc
from synthtasks.v1 import (
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)

from services.gateway.auth import Authenticator
from services.gateway.config import Settings
from services.gateway.job_launcher import JobLauncher
from services.gateway.servicer import Deadlines, GenerationGateway, ProviderGateway, TaskGateway, TokenGateway
from services.gateway.stalled_jobs import StalledJobSweeper
from services.generation_queue.broker import create_broker
from services.runtime.channels import internal_channel
from services.runtime.server import BuiltServer, Registration, create_server

SERVICE = "gateway"


def build_server(settings: Settings, address: str | None = None) -> BuiltServer:
    registry = internal_channel(settings.registry_address, settings)
    task_store = internal_channel(settings.task_store_address, settings)
    redis_client = redis.Redis.from_url(settings.redis_url)
    broker = create_broker(settings.redis_url, namespace=settings.redis_namespace)
    deadlines = Deadlines(settings.downstream_timeout_seconds, settings.validation_timeout_seconds)
    auth = Authenticator(
        auth_service_pb2_grpc.AuthServiceStub(registry),
        cache_seconds=settings.auth_cache_seconds,
        timeout=settings.downstream_timeout_seconds,
    )
    providers = provider_service_pb2_grpc.ProviderServiceStub(registry)
    job_store = job_store_service_pb2_grpc.JobStoreServiceStub(task_store)
    launcher = JobLauncher(
        providers=providers,
        job_store=job_store,
        broker=broker,
        redis_client=redis_client,
        redis_namespace=settings.redis_namespace,
        max_text_count=settings.max_text_count,
        max_prompt_chars=settings.max_prompt_chars,
        slots_per_message=settings.slots_per_message,
    )
    built = create_server(
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
                GenerationGateway(
                    auth, generation_service_pb2_grpc.GenerationServiceStub(task_store), launcher, deadlines
                ),
                generation_service_pb2_grpc.add_GenerationServiceServicer_to_server,
                "synthtasks.v1.GenerationService",
            ),
            Registration(
                TaskGateway(auth, task_service_pb2_grpc.TaskServiceStub(task_store), deadlines),
                task_service_pb2_grpc.add_TaskServiceServicer_to_server,
                "synthtasks.v1.TaskService",
            ),
        ],
        service=SERVICE,
        settings=settings,
        internal_only=False,
    )
    sweeper = StalledJobSweeper(
        job_store=job_store,
        launcher=launcher,
        stalled_for=timedelta(seconds=settings.stalled_job_seconds),
        interval_seconds=settings.stalled_job_check_seconds,
        timeout=settings.downstream_timeout_seconds,
    )
    sweeper.start()
    built.on_stop.extend([sweeper.stop, registry.close, task_store.close, redis_client.close, broker.close])
    return built
