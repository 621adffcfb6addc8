"""The whole synthtasks system for tests: the provider registry, the task store and the
gateway as real gRPC servers on loopback ports (in this process), generator workers as
real `synthtasks-worker` processes, and the fake OpenAI server as the LLM provider."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.fernet import Fernet
from synthtasks.v1 import (
    audit_service_pb2_grpc,
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)

from services.gateway.config import Settings as GatewaySettings
from services.gateway.server import build_server as build_gateway
from services.provider_registry.config import Settings as RegistrySettings
from services.provider_registry.server import build_registry
from services.provider_registry.server import build_server as build_registry_server
from services.runtime.aio_server import AioBuiltServer
from services.runtime.call_metadata import AttachMetadata
from services.runtime.server import BuiltServer
from services.task_store.config import Settings as TaskStoreSettings
from services.task_store.server import build_server as build_task_store
from synthtasks_fake_llm import FakeOpenAIServer

LOOPBACK = "127.0.0.1"


def bearer(token: str) -> AttachMetadata:
    """The public API's credential: `authorization: Bearer <token>`."""
    return AttachMetadata([("authorization", f"Bearer {token}")])


@dataclass
class Clients:
    """Stubs of the public API, all sending one bearer token (or none)."""

    channel: grpc.Channel
    providers: provider_service_pb2_grpc.ProviderServiceStub
    tokens: token_service_pb2_grpc.TokenServiceStub
    generation: generation_service_pb2_grpc.GenerationServiceStub
    tasks: task_service_pb2_grpc.TaskServiceStub
    audit: audit_service_pb2_grpc.AuditServiceStub


@dataclass
class Stack:
    gateway: AioBuiltServer
    registry: BuiltServer
    task_store: BuiltServer
    registry_settings: RegistrySettings
    task_store_settings: TaskStoreSettings
    gateway_settings: GatewaySettings
    fake_llm: FakeOpenAIServer
    admin_token: str
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def gateway_address(self) -> str:
        return f"{LOOPBACK}:{self.gateway.port}"

    @property
    def registry_address(self) -> str:
        return f"{LOOPBACK}:{self.registry.port}"

    @property
    def task_store_address(self) -> str:
        return f"{LOOPBACK}:{self.task_store.port}"

    def clients(self, token: str | None) -> Clients:
        channel = grpc.insecure_channel(self.gateway_address)
        if token is not None:
            channel = grpc.intercept_channel(channel, bearer(token))
        self._channels.append(channel)
        return Clients(
            channel,
            provider_service_pb2_grpc.ProviderServiceStub(channel),
            token_service_pb2_grpc.TokenServiceStub(channel),
            generation_service_pb2_grpc.GenerationServiceStub(channel),
            task_service_pb2_grpc.TaskServiceStub(channel),
            audit_service_pb2_grpc.AuditServiceStub(channel),
        )

    def admin(self) -> Clients:
        return self.clients(self.admin_token)

    def service_environment(self) -> dict[str, str]:
        """Environment for service processes (workers, CLI-started services) of this stack."""
        return {
            "SYNTHTASKS_INTERNAL_TOKEN": self.registry_settings.internal_token.get_secret_value(),
            "SYNTHTASKS_REDIS_URL": self.gateway_settings.redis_url,
            "SYNTHTASKS_REDIS_NAMESPACE": self.gateway_settings.redis_namespace,
            "SYNTHTASKS_WORKER_REGISTRY_ADDRESS": self.registry_address,
            "SYNTHTASKS_WORKER_TASK_STORE_ADDRESS": self.task_store_address,
            "SYNTHTASKS_WORKER_METRICS_PORT": "0",
        }

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
        for server in (self.gateway, self.task_store, self.registry):
            server.stop(grace=0.5)


@contextlib.contextmanager
def running_stack(
    *,
    make_database,
    redis_url: str,
    redis_namespace: str,
    task_store_overrides: dict[str, Any] | None = None,
    **gateway_overrides: Any,
) -> Iterator[Stack]:
    internal_token = secrets.token_urlsafe(24)
    registry_settings = RegistrySettings(
        internal_token=internal_token,
        master_keys=Fernet.generate_key().decode(),
        database_url=make_database("registry"),
        metrics_port=0,
        validation_timeout_seconds=3,
    )
    task_store_settings = TaskStoreSettings(
        internal_token=internal_token,
        database_url=make_database("tasks"),
        metrics_port=0,
        **(task_store_overrides or {}),
    )
    with contextlib.ExitStack() as cleanup:
        fake_llm = cleanup.enter_context(FakeOpenAIServer())
        registry = build_registry_server(registry_settings, f"{LOOPBACK}:0")
        cleanup.callback(registry.stop, 0.5)
        task_store = build_task_store(task_store_settings, f"{LOOPBACK}:0")
        cleanup.callback(task_store.stop, 0.5)
        gateway_settings = GatewaySettings(
            internal_token=internal_token,
            registry_address=f"{LOOPBACK}:{registry.port}",
            task_store_address=f"{LOOPBACK}:{task_store.port}",
            redis_url=redis_url,
            redis_namespace=redis_namespace,
            metrics_port=0,
            **gateway_overrides,
        )
        gateway = build_gateway(gateway_settings, f"{LOOPBACK}:0")
        cleanup.pop_all()
        registry_admin, pool = build_registry(registry_settings)
        _, admin_token = registry_admin.create_token(display_name="suite admin", is_admin=True, projects=[])
        pool.close()
        stack = Stack(
            gateway,
            registry,
            task_store,
            registry_settings,
            task_store_settings,
            gateway_settings,
            fake_llm,
            admin_token,
        )
        try:
            yield stack
        finally:
            stack.close()
            fake_llm.stop()


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the whole process group: dramatiq's parent and its worker children."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM to dramatiq's parent only: it stops its children gracefully itself."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def running_workers(
    stack: Stack, log_dir: Path, *, count: int = 1, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[list[WorkerProcess]]:
    """Start `count` real worker processes (each `synthtasks-worker`) against the stack."""
    env = {**os.environ, **stack.service_environment(), **(extra_env or {})}
    workers: list[WorkerProcess] = []
    try:
        for index in range(count):
            log_path = log_dir / f"worker-{index}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "services.generator_worker", *args],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            workers.append(WorkerProcess(process, log_path))
        yield workers
    finally:
        for worker in workers:
            worker.stop()
