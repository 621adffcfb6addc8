"""What is deployed: the files, the overlays and variants, and the services with their settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
PYPROJECT = REPO / "pyproject.toml"
SECRET_EXAMPLE = K8S / "overlays" / "prod" / "secret.example.yaml"

OVERLAYS = ("dev", "prod")
CPU_FALLBACK = "worker-cpu-hpa"
VARIANTS = OVERLAYS + tuple(f"{overlay}+{CPU_FALLBACK}" for overlay in OVERLAYS)
NAMESPACES = {"dev": "synthtasks-dev", "prod": "synthtasks"}

# Manifests are validated against the oldest Kubernetes release docs/operations.md
# supports (native gRPC probes are GA since 1.27) and the newest kubernetes-validate knows.
OLDEST_KUBERNETES = "1.30.0"

# Custom resources: kubernetes-validate has no schema for them, so they are the only
# kinds not validated by it; test_keda_resources_have_their_required_fields checks them.
CUSTOM_RESOURCE_KINDS = frozenset(
    {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }
)

# Work waiting for workers is in the fair backlog, a Redis hash named from this setting
# (shared by gateway and workers) by this function.
BROKER_NAMESPACE_ENV = "SYNTHTASKS_REDIS_NAMESPACE"
BACKLOG_KEY_FUNCTION = "services.generation_queue.backlog:backlog_key"
IMAGE_UID = 10001


@dataclass(frozen=True)
class Service:
    """One synthtasks process, as docs/conventions.md describes it."""

    name: str  # component label in Kubernetes, service name in docker-compose.yml
    script: str
    settings: str  # "module:Class"
    grpc_port: int | None
    metrics_port: int
    listen_env: str | None
    metrics_env: str
    # Services without a gRPC listen address bind their metrics endpoint by this setting.
    metrics_host_env: str | None = None


SERVICES = {
    service.script: service
    for service in (
        Service(
            name="gateway",
            script="synthtasks-gateway",
            settings="services.gateway.config:Settings",
            grpc_port=50051,
            metrics_port=9101,
            listen_env="SYNTHTASKS_GATEWAY_LISTEN_ADDRESS",
            metrics_env="SYNTHTASKS_GATEWAY_METRICS_PORT",
        ),
        Service(
            name="provider-registry",
            script="synthtasks-provider-registry",
            settings="services.provider_registry.config:Settings",
            grpc_port=50052,
            metrics_port=9102,
            listen_env="SYNTHTASKS_REGISTRY_LISTEN_ADDRESS",
            metrics_env="SYNTHTASKS_REGISTRY_METRICS_PORT",
        ),
        Service(
            name="task-store",
            script="synthtasks-task-store",
            settings="services.task_store.config:Settings",
            grpc_port=50053,
            metrics_port=9103,
            listen_env="SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS",
            metrics_env="SYNTHTASKS_TASK_STORE_METRICS_PORT",
        ),
        Service(
            name="worker",
            script="synthtasks-worker",
            settings="services.generator_worker.config:Settings",
            grpc_port=None,
            metrics_port=9104,
            listen_env=None,
            metrics_env="SYNTHTASKS_WORKER_METRICS_PORT",
            metrics_host_env="SYNTHTASKS_WORKER_METRICS_HOST",
        ),
    )
}
SERVICES_BY_NAME = {service.name: service for service in SERVICES.values()}
# The review web app serves HTTP, not gRPC: tests/deploy/test_web.py checks it.
WEB_SCRIPT = "synthtasks-web"

# Settings whose value is the gRPC address of another service: (env name, target).
ADDRESS_SETTINGS = {
    "SYNTHTASKS_GATEWAY_REGISTRY_ADDRESS": "provider-registry",
    "SYNTHTASKS_GATEWAY_TASK_STORE_ADDRESS": "task-store",
    "SYNTHTASKS_WORKER_REGISTRY_ADDRESS": "provider-registry",
    "SYNTHTASKS_WORKER_TASK_STORE_ADDRESS": "task-store",
}
