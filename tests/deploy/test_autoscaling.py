"""Autoscaling: KEDA on the queue the gateway fills, the CPU fallback, HPAs and PDBs."""

from __future__ import annotations

import importlib

import pytest

from tests.deploy.documents import container_env, named, of_kind, service_of, synthtasks_containers
from tests.deploy.layout import BACKLOG_KEY_FUNCTION, BROKER_NAMESPACE_ENV, CPU_FALLBACK, OVERLAYS, SERVICES, WEB_SCRIPT
from tests.deploy.settings_env import field_default


def _backlog_key(docs, settings_classes) -> str:
    """The Redis hash of the generation backlog, as the gateway and the workers configure it."""
    module, _, function = BACKLOG_KEY_FUNCTION.partition(":")
    backlog_key = getattr(importlib.import_module(module), function)
    namespaces = set()
    for _, _, container in synthtasks_containers(docs):
        if container["command"][0] == WEB_SCRIPT:
            continue
        service = service_of(container["command"])
        if service.name in ("gateway", "worker"):
            settings = settings_classes[service.name]
            env = container_env(container, docs)
            namespaces.add(env.get(BROKER_NAMESPACE_ENV) or field_default(settings, BROKER_NAMESPACE_ENV))
    assert len(namespaces) == 1, f"gateway and workers use different broker namespaces: {namespaces}"
    return backlog_key(namespaces.pop())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_watches_the_backlog_the_gateway_fills(rendered, settings_classes, overlay):
    docs = rendered[overlay]
    [scaled] = of_kind(docs, "ScaledObject")
    [trigger] = scaled["spec"]["triggers"]
    # KEDA's redis scaler counts a hash with HLEN, like a list with LLEN.
    assert trigger["metadata"]["listName"] == _backlog_key(docs, settings_classes)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_resources_have_their_required_fields(rendered, overlay):
    docs = rendered[overlay]
    [scaled] = of_kind(docs, "ScaledObject")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]["name"]
    named(docs, "Deployment", target)
    assert target == "synthtasks-worker"
    assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"
    metadata = trigger["metadata"]
    assert metadata["listName"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA trigger metadata values are strings"
    assert int(metadata["listLength"]) > 0
    auth = named(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = auth["spec"]["secretTargetRef"]
    assert refs and all({"parameter", "name", "key"} <= set(ref) for ref in refs)
    # KEDA needs the Redis address from somewhere: the trigger or its authentication.
    parameters = {ref["parameter"] for ref in refs} | set(metadata)
    assert parameters & {"address", "host", "addressFromEnv", "hostFromEnv"}
    # Nothing else may scale the workers at the same time.
    assert not [
        hpa for hpa in of_kind(docs, "HorizontalPodAutoscaler") if hpa["spec"]["scaleTargetRef"]["name"] == target
    ]
    assert "replicas" not in named(docs, "Deployment", target)["spec"], "the autoscaler owns replicas"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cpu_fallback_replaces_keda_with_an_hpa(rendered, overlay):
    docs = rendered[f"{overlay}+{CPU_FALLBACK}"]
    assert not [doc for doc in docs if doc["apiVersion"].startswith("keda.sh/")]
    hpa = named(docs, "HorizontalPodAutoscaler", "synthtasks-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "synthtasks-worker",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_scales_with_an_hpa_and_every_service_has_a_pdb(rendered, overlay):
    docs = rendered[overlay]
    hpa = named(docs, "HorizontalPodAutoscaler", "synthtasks-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "synthtasks-gateway"
    assert "replicas" not in named(docs, "Deployment", "synthtasks-gateway")["spec"]
    for service in SERVICES.values():
        deployment = named(docs, "Deployment", f"synthtasks-{service.name}")
        pdb = named(docs, "PodDisruptionBudget", f"synthtasks-{service.name}")
        selector = pdb["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
