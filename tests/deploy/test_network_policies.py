"""Network policies, evaluated: exactly the intended callers reach each port."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.deploy.documents import of_kind, pod_templates
from tests.deploy.layout import NAMESPACES, OVERLAYS, SERVICES


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
        for _, template in pod_templates(docs)
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
        for policy in of_kind(docs, "NetworkPolicy")
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
    deny = [p for p in of_kind(docs, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
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
