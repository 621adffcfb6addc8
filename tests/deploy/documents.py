"""Helpers over rendered Kubernetes documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.layout import SERVICES, Service


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) for every Deployment, StatefulSet and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc, doc["spec"]["template"]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def is_synthtasks_image(container: dict[str, Any]) -> bool:
    image = container["image"].rsplit("@", 1)[0]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return repository.rsplit("/", 1)[-1] == "synthtasks"


def synthtasks_containers(docs) -> Iterator[tuple[dict, dict, dict]]:
    """(workload, pod spec, container) for every container running the synthtasks image."""
    for workload, template in pod_templates(docs):
        for container in containers(template["spec"]):
            if is_synthtasks_image(container):
                yield workload, template["spec"], container


def container_env(container: dict[str, Any], docs) -> dict[str, str | None]:
    """Environment of a container: name -> value (None when it comes from a Secret)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = named(docs, "ConfigMap", source["configMapRef"]["name"])
            env.update({key: str(value) for key, value in config_map.get("data", {}).items()})
        elif "secretRef" in source:
            pytest.fail("envFrom secretRef hides which secrets a container gets: use secretKeyRef")
    for item in container.get("env", []):
        env[item["name"]] = item.get("value") if "value" in item else None
    return env


def service_of(command: list[str]) -> Service:
    assert command and command[0] in SERVICES, f"{command} does not run a synthtasks service"
    return SERVICES[command[0]]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def host_of(address: str) -> str:
    return address.rsplit(":", 1)[0]
