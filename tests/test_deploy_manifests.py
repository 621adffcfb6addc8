"""The ways to run synthtasks (Dockerfile, docker-compose.yml, deploy/k8s/) render, are
valid, are hardened, and agree with the services they run.

- Every kustomize overlay (and each with the CPU-autoscaling fallback component) renders
  and each document validates with kubernetes-validate --strict. KEDA's custom
  resources have no schema there: their required fields are checked by hand.
- Environment variable names in docker-compose.yml and in the Kubernetes containers are
  settings of the service that the container runs (derived from its pydantic-settings
  class), required settings are all given, ports and probes match the settings'
  defaults, and every command is a console script of pyproject.toml.

Rendering needs kustomize v5 (`kustomize` or `kubectl kustomize`); install it with
`bash deploy/k8s/install-kubectl.sh`. Without it the rendering tests skip, except when
the CI environment variable is set, where they fail.
"""

from __future__ import annotations

import base64
import importlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
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
# The review web app serves HTTP, not gRPC: tests/test_web_deploy_manifests.py checks it.
WEB_SCRIPT = "synthtasks-web"

# Settings whose value is the gRPC address of another service: (env name, target).
ADDRESS_SETTINGS = {
    "SYNTHTASKS_GATEWAY_REGISTRY_ADDRESS": "provider-registry",
    "SYNTHTASKS_GATEWAY_TASK_STORE_ADDRESS": "task-store",
    "SYNTHTASKS_WORKER_REGISTRY_ADDRESS": "provider-registry",
    "SYNTHTASKS_WORKER_TASK_STORE_ADDRESS": "task-store",
}


# --------------------------------------------------------------------------------------
# Tools: skip locally when missing, fail in CI
# --------------------------------------------------------------------------------------


def _tool_missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (the CI environment variable is set, so this is an error)")
    pytest.skip(reason)


def _major(version: str) -> int:
    match = re.search(r"v?(\d+)\.", version)
    return int(match.group(1)) if match else 0


def find_kustomize() -> list[str] | None:
    """The command that renders a kustomization directory, or None.

    $KUSTOMIZE_BIN (a kustomize binary), else `kustomize` on PATH, else `kubectl
    kustomize`; only kustomize v5 or newer counts (the overlays use `labels` and
    components).
    """
    explicit = os.environ.get("KUSTOMIZE_BIN")
    candidates: list[tuple[list[str], list[str]]] = []
    if explicit:
        candidates.append(([explicit, "build"], [explicit, "version"]))
    if shutil.which("kustomize"):
        candidates.append((["kustomize", "build"], ["kustomize", "version"]))
    if shutil.which("kubectl"):
        candidates.append((["kubectl", "kustomize"], ["kubectl", "version", "--client", "-o", "json"]))
    for build, version_cmd in candidates:
        try:
            out = subprocess.run(version_cmd, capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version_cmd[0] == "kubectl":
            try:
                version = json.loads(out).get("kustomizeVersion", "")
            except json.JSONDecodeError:
                continue
        else:
            version = out.strip()
        if _major(version) >= 5:
            return build
    return None


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    command = find_kustomize()
    if command is None:
        _tool_missing(
            "no kustomize v5 renderer (kustomize, or kubectl >= 1.27) on PATH; "
            "install one with `bash deploy/k8s/install-kubectl.sh`"
        )
    return command


@pytest.fixture(scope="session")
def kubernetes_validate():
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        _tool_missing("kubernetes-validate is not installed (pip install -e '.[dev]')")


def _render(kustomize: list[str], directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*kustomize, str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"rendering {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(kustomize, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Every variant's rendered documents: "dev", "prod", "dev+worker-cpu-hpa", ..."""
    out = {overlay: _render(kustomize, K8S / "overlays" / overlay) for overlay in OVERLAYS}
    for overlay in OVERLAYS:
        # kustomize refuses absolute paths to other kustomizations: use relative ones.
        wrapper = tmp_path_factory.mktemp(f"{overlay}-{CPU_FALLBACK}")
        rel = Path(os.path.relpath(K8S, wrapper))
        (wrapper / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [str(rel / "overlays" / overlay)],
                    "components": [str(rel / "components" / CPU_FALLBACK)],
                }
            )
        )
        out[f"{overlay}+{CPU_FALLBACK}"] = _render(kustomize, wrapper)
    return out


# --------------------------------------------------------------------------------------
# Helpers over rendered documents
# --------------------------------------------------------------------------------------


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in _of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) for every Deployment, StatefulSet and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc, doc["spec"]["template"]


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _is_synthtasks_image(container: dict[str, Any]) -> bool:
    image = container["image"].rsplit("@", 1)[0]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return repository.rsplit("/", 1)[-1] == "synthtasks"


def _synthtasks_containers(docs) -> Iterator[tuple[dict, dict, dict]]:
    """(workload, pod spec, container) for every container running the synthtasks image."""
    for workload, template in _pod_templates(docs):
        for container in _containers(template["spec"]):
            if _is_synthtasks_image(container):
                yield workload, template["spec"], container


def _container_env(container: dict[str, Any], docs) -> dict[str, str | None]:
    """Environment of a container: name -> value (None when it comes from a Secret)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = _named(docs, "ConfigMap", source["configMapRef"]["name"])
            env.update({key: str(value) for key, value in config_map.get("data", {}).items()})
        elif "secretRef" in source:
            pytest.fail("envFrom secretRef hides which secrets a container gets: use secretKeyRef")
    for item in container.get("env", []):
        env[item["name"]] = item.get("value") if "value" in item else None
    return env


def _service_of(command: list[str]) -> Service:
    assert command and command[0] in SERVICES, f"{command} does not run a synthtasks service"
    return SERVICES[command[0]]


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _host_of(address: str) -> str:
    return address.rsplit(":", 1)[0]


# --------------------------------------------------------------------------------------
# Settings: the environment variable names a pydantic-settings class accepts
# --------------------------------------------------------------------------------------


def _alias_names(alias: Any) -> list[str]:
    """Environment names that a validation_alias stands for (str, AliasPath, AliasChoices)."""
    from pydantic import AliasChoices, AliasPath

    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):
        return [alias.path[0]] if isinstance(alias.path[0], str) else []
    if isinstance(alias, AliasChoices):
        return [name for choice in alias.choices for name in _alias_names(choice)]
    return []


def _nested_model(annotation: Any):
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():  # Optional[Model], Model | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _by_name_and_alias(config) -> tuple[bool, bool]:
    """(populate by field name, populate by alias), as pydantic resolves model_config."""
    by_alias = config.get("validate_by_alias") is not False
    by_name = config.get("validate_by_name")
    if by_name is None:
        by_name = config.get("populate_by_name")
    if by_name is None:
        by_name = not by_alias
    return bool(by_name), by_alias


def settings_env_names(settings_cls) -> dict[str, str]:
    """Every environment variable name `settings_cls` reads -> the field it sets.

    As pydantic-settings resolves them: a field's validation_alias (each choice of an
    AliasChoices, the first key of an AliasPath) names the variable, without env_prefix
    unless env_prefix_target is "alias" or "all"; a field without an alias, or any field
    when populating by name is enabled (populate_by_name / validate_by_name), is read
    from env_prefix + field name. Names are upper-cased unless the class is
    case-sensitive. Nested models add NAME<delimiter>SUBFIELD names when
    env_nested_delimiter is set.
    """
    config = settings_cls.model_config
    prefix = config.get("env_prefix") or ""
    target = config.get("env_prefix_target") or "variable"
    alias_prefix = prefix if target in ("alias", "all") else ""
    name_prefix = prefix if target in ("variable", "all") else ""
    by_name, by_alias = _by_name_and_alias(config)
    case_sensitive = bool(config.get("case_sensitive", False))
    delimiter = config.get("env_nested_delimiter")
    names: dict[str, str] = {}
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias if field.validation_alias is not None else field.alias
        bases = [alias_prefix + name for name in _alias_names(alias)] if alias is not None and by_alias else []
        if not bases or by_name:
            bases.append(name_prefix + field_name)
        nested = _nested_model(field.annotation)
        for base in bases:
            names[base] = field_name
            if delimiter and nested is not None:
                for sub_name in nested.model_fields:
                    names[f"{base}{delimiter}{sub_name}"] = field_name
    if not case_sensitive:
        names = {name.upper(): field for name, field in names.items()}
    return names


def _normalise(settings_cls, name: str) -> str:
    return name if settings_cls.model_config.get("case_sensitive", False) else name.upper()


def _load_settings(service: Service):
    module, _, cls = service.settings.partition(":")
    return getattr(importlib.import_module(module), cls)


def _field_default(settings_cls, env_name: str) -> Any:
    field_name = settings_env_names(settings_cls)[_normalise(settings_cls, env_name)]
    field = settings_cls.model_fields[field_name]
    return field.get_default(call_default_factory=True)


def _required_env(settings_cls) -> dict[str, set[str]]:
    """Required field -> the environment names any of which provides it."""
    required: dict[str, set[str]] = {}
    for name, field in settings_env_names(settings_cls).items():
        if settings_cls.model_fields[field].is_required():
            required.setdefault(field, set()).add(name)
    return required


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, Any]:
    """Service name -> its Settings class. Errors (not skips) while a class is missing."""
    return {service.name: _load_settings(service) for service in SERVICES.values()}


def test_env_name_derivation_follows_pydantic_settings():
    from pydantic import AliasChoices, AliasPath, BaseModel, Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Limits(BaseModel):
        rpm: int = 60

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EX_", env_nested_delimiter="__")

        listen_address: str = "127.0.0.1:1"
        token: str = Field(validation_alias="SHARED_TOKEN")
        log_level: str = Field("INFO", validation_alias=AliasChoices("SHARED_LOG_LEVEL", "ex_log"))
        url: str = Field("x", validation_alias=AliasChoices(AliasPath("SHARED_URL", 0), "EX_URL"))
        limits: Limits = Limits()

    names = settings_env_names(Example)
    assert set(names) == {
        "EX_LISTEN_ADDRESS",
        "SHARED_TOKEN",
        "SHARED_LOG_LEVEL",
        "EX_LOG",
        "SHARED_URL",
        "EX_URL",
        "EX_LIMITS",
        "EX_LIMITS__RPM",
    }
    assert _required_env(Example) == {"token": {"SHARED_TOKEN"}}
    # The derivation agrees with what pydantic-settings really reads.
    env = {"SHARED_TOKEN": "t", "EX_LOG": "DEBUG", "EX_LIMITS__RPM": "5", "EX_LISTEN_ADDRESS": "0.0.0.0:2"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        loaded = Example()
    assert (loaded.token, loaded.log_level, loaded.limits.rpm, loaded.listen_address) == (
        "t",
        "DEBUG",
        5,
        "0.0.0.0:2",
    )

    class ByName(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="BN_", populate_by_name=True)

        redis_url: str = Field("x", validation_alias="SHARED_REDIS_URL")

    assert set(settings_env_names(ByName)) == {"SHARED_REDIS_URL", "BN_REDIS_URL"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BN_REDIS_URL", "redis://by-name")
        assert ByName().redis_url == "redis://by-name"


# --------------------------------------------------------------------------------------
# Kubernetes: render and validate
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_overlay_renders_and_validates_against_kubernetes_schemas(rendered, kubernetes_validate, variant):
    docs = rendered[variant]
    versions = sorted({OLDEST_KUBERNETES, kubernetes_validate.latest_version()})
    problems = []
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCE_KINDS:
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = "/".join(str(p) for p in error.path)
                problems.append(f"{doc['kind']}/{doc['metadata']['name']} @ {version}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{doc['kind']}/{doc['metadata']['name']} @ {version}: {error.message}")
    assert not problems, "\n".join(problems)
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= kinds


def test_strict_validation_rejects_unknown_fields(kubernetes_validate):
    """Guard against a validator that accepts anything."""
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dat": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(config_map, kubernetes_validate.latest_version(), strict=True)


def test_every_document_is_namespaced_by_its_overlay(rendered):
    for overlay in OVERLAYS:
        for doc in rendered[overlay]:
            if doc["kind"] == "Namespace":
                assert doc["metadata"]["name"] == NAMESPACES[overlay]
            else:
                assert doc["metadata"].get("namespace") == NAMESPACES[overlay], doc["metadata"]["name"]


def test_secret_example_validates_and_holds_only_placeholders(kubernetes_validate):
    docs = [doc for doc in yaml.safe_load_all(SECRET_EXAMPLE.read_text()) if doc]
    assert {doc["metadata"]["name"] for doc in docs} == {
        "synthtasks-secrets",
        "synthtasks-master-keys",
        "synthtasks-keda-redis",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        assert "data" not in doc, "use stringData placeholders, never encoded values"
        for key, value in doc["stringData"].items():
            placeholder = "change-me" in value or ".example." in value
            assert placeholder, f"{doc['metadata']['name']}.{key} is not a placeholder"


def _secret_refs(docs) -> set[tuple[str, str]]:
    refs = set()
    for _, template in _pod_templates(docs):
        for container in _containers(template["spec"]):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    for doc in docs:
        if doc["kind"] == "TriggerAuthentication":
            refs |= {(ref["name"], ref["key"]) for ref in doc["spec"].get("secretTargetRef", [])}
    return refs


def test_prod_ships_no_secret_and_refers_only_to_documented_ones(rendered):
    documented = {
        (doc["metadata"]["name"], key)
        for doc in yaml.safe_load_all(SECRET_EXAMPLE.read_text())
        if doc
        for key in doc["stringData"]
    }
    for variant in ("prod", f"prod+{CPU_FALLBACK}"):
        docs = rendered[variant]
        assert not _of_kind(docs, "Secret"), "prod Secrets are created outside git"
        missing = _secret_refs(docs) - documented
        assert not missing, f"referenced but not in secret.example.yaml: {sorted(missing)}"


def test_dev_secrets_exist_and_are_marked_insecure(rendered):
    docs = rendered["dev"]
    secrets = {doc["metadata"]["name"]: doc for doc in _of_kind(docs, "Secret")}
    for name, key in _secret_refs(docs):
        assert name in secrets, f"Secret {name} is not rendered in dev"
        assert key in secrets[name].get("data", {}), f"Secret {name} has no key {key}"

    def value(prefix: str, key: str) -> str:
        # Generated Secrets carry a hash suffix: find them by the name before it.
        [doc] = [d for n, d in secrets.items() if n.rsplit("-", 1)[0] == prefix]
        return base64.b64decode(doc["data"][key]).decode()

    for key in (
        "SYNTHTASKS_INTERNAL_TOKEN",
        "SYNTHTASKS_REGISTRY_DATABASE_URL",
        "SYNTHTASKS_TASK_STORE_DATABASE_URL",
        "POSTGRES_PASSWORD",
    ):
        assert "insecure" in value("synthtasks-secrets", key).lower(), key
    for fernet_key in value("synthtasks-master-keys", "SYNTHTASKS_REGISTRY_MASTER_KEYS").split(","):
        raw = base64.urlsafe_b64decode(fernet_key)
        assert len(raw) == 32 and raw.startswith(b"INSECURE-DEV-KEY"), "dev master key must be the public placeholder"


# --------------------------------------------------------------------------------------
# Kubernetes: autoscaling
# --------------------------------------------------------------------------------------


def _backlog_key(docs, settings_classes) -> str:
    """The Redis hash of the generation backlog, as the gateway and the workers configure it."""
    module, _, function = BACKLOG_KEY_FUNCTION.partition(":")
    backlog_key = getattr(importlib.import_module(module), function)
    namespaces = set()
    for _, _, container in _synthtasks_containers(docs):
        if container["command"][0] == WEB_SCRIPT:
            continue
        service = _service_of(container["command"])
        if service.name in ("gateway", "worker"):
            settings = settings_classes[service.name]
            env = _container_env(container, docs)
            namespaces.add(env.get(BROKER_NAMESPACE_ENV) or _field_default(settings, BROKER_NAMESPACE_ENV))
    assert len(namespaces) == 1, f"gateway and workers use different broker namespaces: {namespaces}"
    return backlog_key(namespaces.pop())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_watches_the_backlog_the_gateway_fills(rendered, settings_classes, overlay):
    docs = rendered[overlay]
    [scaled] = _of_kind(docs, "ScaledObject")
    [trigger] = scaled["spec"]["triggers"]
    # KEDA's redis scaler counts a hash with HLEN, like a list with LLEN.
    assert trigger["metadata"]["listName"] == _backlog_key(docs, settings_classes)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_resources_have_their_required_fields(rendered, overlay):
    docs = rendered[overlay]
    [scaled] = _of_kind(docs, "ScaledObject")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]["name"]
    _named(docs, "Deployment", target)
    assert target == "synthtasks-worker"
    assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert metadata["listName"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA trigger metadata values are strings"
    assert int(metadata["listLength"]) > 0
    auth = _named(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = auth["spec"]["secretTargetRef"]
    assert refs and all({"parameter", "name", "key"} <= set(ref) for ref in refs)
    # KEDA needs the Redis address from somewhere: the trigger or its authentication.
    parameters = {ref["parameter"] for ref in refs} | set(metadata)
    assert parameters & {"address", "host", "addressFromEnv", "hostFromEnv"}
    # Nothing else may scale the workers at the same time.
    assert not [
        hpa for hpa in _of_kind(docs, "HorizontalPodAutoscaler") if hpa["spec"]["scaleTargetRef"]["name"] == target
    ]
    assert "replicas" not in _named(docs, "Deployment", target)["spec"], "the autoscaler owns replicas"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cpu_fallback_replaces_keda_with_an_hpa(rendered, overlay):
    docs = rendered[f"{overlay}+{CPU_FALLBACK}"]
    assert not [doc for doc in docs if doc["apiVersion"].startswith("keda.sh/")]
    hpa = _named(docs, "HorizontalPodAutoscaler", "synthtasks-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "synthtasks-worker",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_scales_with_an_hpa_and_every_service_has_a_pdb(rendered, overlay):
    docs = rendered[overlay]
    hpa = _named(docs, "HorizontalPodAutoscaler", "synthtasks-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "synthtasks-gateway"
    assert "replicas" not in _named(docs, "Deployment", "synthtasks-gateway")["spec"]
    for service in SERVICES.values():
        deployment = _named(docs, "Deployment", f"synthtasks-{service.name}")
        pdb = _named(docs, "PodDisruptionBudget", f"synthtasks-{service.name}")
        selector = pdb["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


# --------------------------------------------------------------------------------------
# Kubernetes: pods
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_hardened(rendered, overlay):
    for workload, template in _pod_templates(rendered[overlay]):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = template["spec"]
        assert pod.get("automountServiceAccountToken") is False, where
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        mounts_tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in _containers(pod):
            here = f"{where}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, here
            assert security["readOnlyRootFilesystem"] is True, here
            assert security["capabilities"]["drop"] == ["ALL"], here
            assert security["runAsNonRoot"] is True, here
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, here
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{here}: {kind}"
            if _is_synthtasks_image(container):
                assert security["runAsUser"] == IMAGE_UID and pod_security["runAsUser"] == IMAGE_UID, here
                tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp and tmp[0]["name"] in mounts_tmp, f"{here}: /tmp must be an emptyDir"


def test_dev_runs_datastores_and_prod_does_not(rendered):
    dev_sets = {doc["metadata"]["name"] for doc in _of_kind(rendered["dev"], "StatefulSet")}
    assert dev_sets == {"synthtasks-postgres", "synthtasks-redis"}
    assert not _of_kind(rendered["prod"], "StatefulSet")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_ports_match_the_services(rendered, settings_classes, overlay):
    docs = rendered[overlay]
    deployments = {
        doc["spec"]["template"]["spec"]["containers"][0]["command"][0]: doc for doc in _of_kind(docs, "Deployment")
    }
    assert set(deployments) == {*SERVICES, WEB_SCRIPT}, "one Deployment per service"
    for script, deployment in deployments.items():
        if script == WEB_SCRIPT:
            continue
        service = SERVICES[script]
        settings = settings_classes[service.name]
        pod = deployment["spec"]["template"]
        [container] = pod["spec"]["containers"]
        env = _container_env(container, docs)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        metrics_default = int(_field_default(settings, service.metrics_env))
        assert metrics_default == service.metrics_port, "docs/conventions.md and the settings disagree"
        assert int(env[service.metrics_env]) == ports["metrics"] == metrics_default
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == metrics_default
        if service.grpc_port is None:
            assert "grpc" not in ports
            host = env[service.metrics_host_env]
            assert ipaddress.ip_address(host).is_unspecified, f"{service.metrics_host_env}={host}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] in ("metrics", metrics_default), probe
            continue
        default_port = _port_of(_field_default(settings, service.listen_env))
        assert default_port == service.grpc_port, "docs/conventions.md and the settings disagree"
        listen = env[service.listen_env]
        assert ipaddress.ip_address(_host_of(listen)).is_unspecified, f"{service.listen_env}={listen}"
        assert _port_of(listen) == ports["grpc"] == default_port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == default_port, probe
        svc = _named(docs, "Service", deployment["metadata"]["name"])
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        by_name = {port["name"]: port for port in svc["spec"]["ports"]}
        assert by_name["grpc"]["port"] == default_port and by_name["grpc"]["targetPort"] == "grpc"
        assert by_name["metrics"]["port"] == metrics_default


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_addresses_of_other_services_point_at_their_kubernetes_services(rendered, overlay):
    docs = rendered[overlay]
    services = {doc["metadata"]["name"]: doc for doc in _of_kind(docs, "Service")}
    seen = set()
    for _, _, container in _synthtasks_containers(docs):
        for name, value in _container_env(container, docs).items():
            if name in ADDRESS_SETTINGS:
                target = SERVICES_BY_NAME[ADDRESS_SETTINGS[name]]
                service = services[_host_of(value)]
                assert service["spec"]["selector"]["app.kubernetes.io/component"] == target.name
                grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
                assert _port_of(value) == grpc["port"] == target.grpc_port, f"{name}={value}"
                seen.add(name)
    assert seen == set(ADDRESS_SETTINGS)


# --------------------------------------------------------------------------------------
# Kubernetes: network policies, evaluated
# --------------------------------------------------------------------------------------


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: tuple[tuple[str, str], ...]


def _pods(docs, namespace: str) -> list[Pod]:
    pods = [
        Pod(
            template["metadata"]["labels"]["app.kubernetes.io/component"],
            namespace,
            tuple(sorted(template["metadata"]["labels"].items())),
        )
        for _, template in _pod_templates(docs)
    ]
    # Pods elsewhere: a client outside the namespace, Prometheus, KEDA's operator.
    pods += [
        Pod("outside", "elsewhere", ()),
        Pod("prometheus", "monitoring", (("app.kubernetes.io/name", "prometheus"),)),
        Pod("keda-operator", "keda", (("app", "keda-operator"),)),
    ]
    return pods


def _allowed_sources(docs, namespace: str, target: str, port: int) -> set[str]:
    """Names of the pods that may open `port` on the `target` pods, under the policies."""
    pods = _pods(docs, namespace)
    [target_pod] = [pod for pod in pods if pod.name == target and pod.namespace == namespace]
    target_labels = dict(target_pod.labels)
    policies = [
        policy
        for policy in _of_kind(docs, "NetworkPolicy")
        if "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], target_labels)
    ]
    if not policies:
        return {pod.name for pod in pods}
    allowed = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            rule_ports = rule.get("ports")
            if rule_ports and not any(p["port"] <= port <= p.get("endPort", p["port"]) for p in rule_ports):
                continue
            for pod in pods:
                peers = rule.get("from")
                if peers is None:
                    allowed.add(pod.name)
                    continue
                for peer in peers:
                    ns_labels = {"kubernetes.io/metadata.name": pod.namespace}
                    ns_ok = (
                        _selects(peer["namespaceSelector"], ns_labels)
                        if "namespaceSelector" in peer
                        else pod.namespace == namespace
                    )
                    pod_ok = _selects(peer["podSelector"], dict(pod.labels)) if "podSelector" in peer else True
                    if ns_ok and pod_ok and "ipBlock" not in peer:
                        allowed.add(pod.name)
    return allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_exactly_the_intended_callers(rendered, overlay):
    docs = rendered[overlay]
    namespace = NAMESPACES[overlay]
    everyone = {pod.name for pod in _pods(docs, namespace)}
    deny = [p for p in _of_kind(docs, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny and all(not p["spec"].get("ingress") for p in deny), "default-deny ingress"

    def allowed(target: str, port: int) -> set[str]:
        return _allowed_sources(docs, namespace, target, port)

    assert allowed("gateway", 50051) == everyone
    assert allowed("provider-registry", 50052) == {"gateway", "worker"}
    assert allowed("task-store", 50053) == {"gateway", "worker"}
    for service in SERVICES.values():
        assert allowed(service.name, service.metrics_port) == {"prometheus"}, service.name
    assert allowed("gateway", 50052) == set()
    if overlay == "dev":
        assert allowed("postgres", 5432) == {"provider-registry", "task-store"}
        assert allowed("redis", 6379) == {"gateway", "worker", "keda-operator"}


# --------------------------------------------------------------------------------------
# Settings and console scripts: Kubernetes and docker compose
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def console_scripts() -> dict[str, str]:
    return tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_containers_run_console_scripts_with_real_settings(
    rendered, settings_classes, console_scripts, overlay
):
    docs = rendered[overlay]
    checked = set()
    for workload, _, container in _synthtasks_containers(docs):
        where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
        assert "args" not in container or container.get("command"), where
        command = container["command"]
        assert command[0] in console_scripts, f"{where}: {command[0]} is not in [project.scripts]"
        if command[0] == WEB_SCRIPT:
            continue
        service = _service_of(command)
        settings = settings_classes[service.name]
        accepted = settings_env_names(settings)
        env = _container_env(container, docs)
        unknown = {name for name in env if _normalise(settings, name) not in accepted}
        assert not unknown, f"{where}: not settings of {service.settings}: {sorted(unknown)}"
        given = {_normalise(settings, name) for name in env}
        for field, names in _required_env(settings).items():
            assert names & given, f"{where}: required setting {field} ({sorted(names)}) is not set"
        checked.add(service.name)
    assert checked == set(SERVICES_BY_NAME)


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _compose_commands(command: str | list[str]) -> list[list[str]]:
    """The programs a compose `command` runs; `sh -c "a && b"` counts as a and b."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["/bin/sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", argv[2]) if part.strip()]
    return [argv]


def _synthtasks_compose_services() -> dict[str, tuple[dict[str, Any], list[Service]]]:
    out = {}
    for name, spec in _compose()["services"].items():
        if "command" not in spec:
            continue
        runs = [SERVICES[argv[0]] for argv in _compose_commands(spec["command"]) if argv[0] in SERVICES]
        if runs:
            out[name] = (spec, runs)
    return out


def test_compose_runs_console_scripts_with_real_settings(settings_classes, console_scripts):
    services = _synthtasks_compose_services()
    assert set(services) == {"migrate", "provider-registry", "task-store", "gateway", "worker"}
    ran = set()
    for name, (spec, runs) in services.items():
        for argv in _compose_commands(spec["command"]):
            assert argv[0] in console_scripts, f"{name}: {argv[0]} is not in [project.scripts]"
        env = spec.get("environment", {})
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        assert "env_file" not in spec, f"{name}: pass secrets one by one (see the file's header)"
        for service in runs:
            ran.add(service.name)
            settings = settings_classes[service.name]
            given = {_normalise(settings, key) for key in env}
            for field, names in _required_env(settings).items():
                assert names & given, f"{name}: required setting {field} ({sorted(names)}) is not set"
        unknown = {
            key
            for key in env
            if not any(
                _normalise(settings_classes[s.name], key) in settings_env_names(settings_classes[s.name]) for s in runs
            )
        }
        assert not unknown, f"{name}: not settings of {[s.name for s in runs]}: {sorted(unknown)}"
    assert ran == set(SERVICES_BY_NAME)


def test_compose_ports_addresses_and_health_checks_match_the_services(settings_classes):
    compose = _compose()["services"]
    for name, (spec, runs) in _synthtasks_compose_services().items():
        if name == "migrate":
            continue
        [service] = runs
        assert name == service.name, "compose service names match the Kubernetes components"
        settings = settings_classes[service.name]
        env = spec["environment"]
        assert int(env[service.metrics_env]) == int(_field_default(settings, service.metrics_env))
        health = spec["healthcheck"]["test"]
        if service.grpc_port is None:
            assert ipaddress.ip_address(env[service.metrics_host_env]).is_unspecified, name
            assert any(f"127.0.0.1:{service.metrics_port}" in part for part in health), name
            continue
        default_port = _port_of(_field_default(settings, service.listen_env))
        assert env[service.listen_env] == f"0.0.0.0:{default_port}", name
        assert health[:2] == ["CMD", "synthtasks-healthcheck"] and _port_of(health[2]) == default_port
    for service_name, (spec, _) in _synthtasks_compose_services().items():
        for key, value in spec.get("environment", {}).items():
            if key in ADDRESS_SETTINGS:
                target = SERVICES_BY_NAME[ADDRESS_SETTINGS[key]]
                assert _host_of(value) in compose, f"{service_name}: {key}={value}"
                assert _port_of(value) == target.grpc_port, f"{service_name}: {key}={value}"


# --------------------------------------------------------------------------------------
# docker compose: structure
# --------------------------------------------------------------------------------------


def test_compose_starts_in_order_and_publishes_only_the_gateway_and_web_app_on_loopback():
    services = _compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["migrate"]["restart"] == "no"
    for name in ("provider-registry", "task-store"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("gateway", "worker"):
        for dependency in ("redis", "provider-registry", "task-store"):
            assert services[name]["depends_on"][dependency] == {"condition": "service_healthy"}
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["local-llm"]["profiles"] == ["local-llm"]
    # Its own Dockerfile: building the service image never compiles llama.cpp.
    assert services["local-llm"]["build"] == {"context": "deploy/local-llm"}
    published = {name: spec["ports"] for name, spec in services.items() if spec.get("ports")}
    assert published == {"gateway": ["127.0.0.1:50051:50051"], "web": ["127.0.0.1:8080:8080"]}


def test_compose_secrets_come_from_env_and_env_example_documents_them():
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert variables <= documented, f"not in .env.example: {sorted(variables - documented)}"
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert {"SYNTHTASKS_INTERNAL_TOKEN", "SYNTHTASKS_REGISTRY_MASTER_KEYS", "POSTGRES_PASSWORD"} <= required
    for line in example.splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and match.group(1) in required:
            # ${VAR:?} refuses only empty values: a placeholder would be used as the
            # secret, so `cp .env.example .env` must leave compose refusing to start.
            assert match.group(2) == "", f".env.example: {match.group(1)} must be empty"
        elif match and match.group(1) in {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"}:
            assert "change-me" in match.group(2), f".env.example: {match.group(1)} must be a placeholder"
    for name, message in re.findall(r"\$\{([A-Z0-9_]+):\?([^}]*)\}", text):
        assert name in message and "generate it with python -c" in message, message
    # Only the registry (and the migration, whose settings validate them) see the master keys.
    holders = {
        name
        for name, spec in _compose()["services"].items()
        if "SYNTHTASKS_REGISTRY_MASTER_KEYS" in (spec.get("environment") or {})
    }
    assert holders == {"provider-registry", "migrate"}


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    lines: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    stages: dict[str, list[str]] = {}
    name = None
    for line in lines:
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, flags=re.IGNORECASE)
        if match:
            name = match.group(1)
            stages[name] = []
        elif name is not None:
            stages[name].append(line)
    return stages


def test_dockerfile_final_stage_is_the_non_root_runtime_without_toolchain(console_scripts):
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, flags=re.MULTILINE)
    stages = _dockerfile_stages()
    assert list(stages)[-1] == "runtime", "the default target must be the runtime image"
    assert set(stages) == {"builder", "runtime"}
    runtime = stages["runtime"]
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in runtime
    assert not any(line.startswith("ENTRYPOINT") for line in runtime)
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies == ["COPY --from=builder /opt/synthtasks /opt/synthtasks"]
    assert not any(re.search(r"build-essential|\bgcc\b|\bcmake\b|pip install", line) for line in runtime)
    [healthcheck] = [line for line in runtime if line.startswith("HEALTHCHECK")]
    assert "synthtasks-healthcheck" in healthcheck and "synthtasks-healthcheck" in console_scripts
    [cmd] = [line for line in runtime if line.startswith("CMD")]
    assert json.loads(cmd[3:].strip())[0] in console_scripts
    assert not any("llama" in line.lower() for stage in stages.values() for line in stage)
    local_llm = (REPO / "deploy/local-llm/Dockerfile").read_text()
    assert "llama_cpp.server" in local_llm and "--n_threads" in local_llm


def test_dockerignore_lets_in_what_the_build_copies():
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for stage in _dockerfile_stages().values():
        for line in stage:
            if line.startswith("COPY") and "--from=" not in line:
                copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert copied <= allowed, f"COPY sources kept out by .dockerignore: {sorted(copied - allowed)}"
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project.get("readme", "README.md") in allowed


def test_production_refuses_private_provider_endpoints_and_development_allows_them(rendered):
    def registry_setting(overlay: str) -> str | None:
        registry = _named(rendered[overlay], "Deployment", "synthtasks-provider-registry")
        [container] = [c for c in registry["spec"]["template"]["spec"]["containers"] if _is_synthtasks_image(c)]
        return _container_env(container, rendered[overlay]).get("SYNTHTASKS_REGISTRY_ALLOW_PRIVATE_ENDPOINTS")

    assert registry_setting("prod") == "false"
    assert registry_setting("dev") is None, "the control: development keeps the default (allowed)"
