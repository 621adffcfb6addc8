"""The review web app in docker-compose.yml and deploy/k8s/: it runs `synthtasks-web`
with real settings, its HTTP probes and ports match them, it points at the gateway, and
the network policies let it reach the gateway only (and DNS) while anyone may reach it.

Rendering and the helpers come from the rest of tests/deploy/ (kustomize v5 needed;
see there)."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from services.web.config import Settings as WebSettings
from tests.deploy.documents import container_env, host_of, named, of_kind, port_of
from tests.deploy.layout import COMPOSE_FILE, NAMESPACES, OVERLAYS
from tests.deploy.settings_env import field_default, normalise, required_env, settings_env_names
from tests.deploy.test_network_policies import Pod, _allowed_sources, _pods, _selects

WEB = "synthtasks-web"
GATEWAY_GRPC_PORT = 50051
DNS_POD = Pod("kube-dns", "kube-system", (("k8s-app", "kube-dns"),))


def _web_container(docs) -> tuple[dict, dict]:
    deployment = named(docs, "Deployment", WEB)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_runs_its_console_script_with_real_settings(rendered, overlay):
    docs = rendered[overlay]
    _, container = _web_container(docs)
    assert container["command"] == [WEB]
    env = container_env(container, docs)
    accepted = settings_env_names(WebSettings)
    unknown = {name for name in env if normalise(WebSettings, name) not in accepted}
    assert not unknown, f"not settings of the web app: {sorted(unknown)}"
    given = {normalise(WebSettings, name) for name in env}
    for field, names in required_env(WebSettings).items():
        assert names & given, f"required setting {field} is not set"
    # The session key comes from a Secret, never from a ConfigMap.
    assert env["SYNTHTASKS_WEB_SESSION_KEYS"] is None
    assert env["SYNTHTASKS_WEB_SECURE_COOKIES"] == "true"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_probes_ports_and_service_match_its_settings(rendered, overlay):
    docs = rendered[overlay]
    deployment, container = _web_container(docs)
    env = container_env(container, docs)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    listen = env["SYNTHTASKS_WEB_LISTEN_ADDRESS"]
    assert ipaddress.ip_address(host_of(listen)).is_unspecified
    default_port = port_of(field_default(WebSettings, "SYNTHTASKS_WEB_LISTEN_ADDRESS"))
    assert port_of(listen) == ports["http"] == default_port
    metrics_default = int(field_default(WebSettings, "SYNTHTASKS_WEB_METRICS_PORT"))
    assert int(env["SYNTHTASKS_WEB_METRICS_PORT"]) == ports["metrics"] == metrics_default
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics_default
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Ready only while the gateway answers: without it no page works.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = named(docs, "Service", WEB)
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    by_name = {port["name"]: port for port in service["spec"]["ports"]}
    assert by_name["http"]["port"] == default_port and by_name["metrics"]["port"] == metrics_default
    pdb = named(docs, "PodDisruptionBudget", WEB)
    assert (
        pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert deployment["spec"]["replicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_points_at_the_gateway_service(rendered, overlay):
    docs = rendered[overlay]
    _, container = _web_container(docs)
    address = container_env(container, docs)["SYNTHTASKS_WEB_GATEWAY_ADDRESS"]
    service = named(docs, "Service", host_of(address))
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    grpc = next(port for port in service["spec"]["ports"] if port["name"] == "grpc")
    assert port_of(address) == grpc["port"] == GATEWAY_GRPC_PORT


def _egress_allowed(docs, namespace: str, source: str) -> set[tuple[str, int]]:
    """(pod, port) pairs the `source` pods may open under the Egress policies."""
    pods = [*_pods(docs, namespace), DNS_POD]
    [source_pod] = [pod for pod in pods if pod.name == source and pod.namespace == namespace]
    policies = [
        policy
        for policy in of_kind(docs, "NetworkPolicy")
        if "Egress" in policy["spec"].get("policyTypes", [])
        and _selects(policy["spec"]["podSelector"], dict(source_pod.labels))
    ]
    assert policies, f"{source} has no egress policy: it could reach anything"
    allowed = set()
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            ports = [port["port"] for port in rule.get("ports", [])]
            assert ports, "an egress rule without ports opens every port"
            for peer in rule.get("to", []):
                assert "ipBlock" not in peer, "egress to addresses outside the cluster"
                for pod in pods:
                    ns_labels = {"kubernetes.io/metadata.name": pod.namespace}
                    ns_ok = (
                        _selects(peer["namespaceSelector"], ns_labels)
                        if "namespaceSelector" in peer
                        else pod.namespace == namespace
                    )
                    pod_ok = _selects(peer["podSelector"], dict(pod.labels)) if "podSelector" in peer else True
                    if ns_ok and pod_ok:
                        allowed |= {(pod.name, port) for port in ports}
    return allowed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_the_web_app_reach_only_the_gateway(rendered, overlay):
    docs = rendered[overlay]
    namespace = NAMESPACES[overlay]
    everyone = {pod.name for pod in _pods(docs, namespace)}
    assert _egress_allowed(docs, namespace, "web") == {("gateway", GATEWAY_GRPC_PORT), ("kube-dns", 53)}
    # Anyone may open the pages; only Prometheus the metrics; and the gateway admits the web app.
    assert _allowed_sources(docs, namespace, "web", 8080) == everyone
    assert _allowed_sources(docs, namespace, "web", 9105) == {"prometheus"}
    assert "web" in _allowed_sources(docs, namespace, "gateway", GATEWAY_GRPC_PORT)
    assert "web" not in _allowed_sources(docs, namespace, "provider-registry", 50052)
    assert "web" not in _allowed_sources(docs, namespace, "task-store", 50053)


def test_compose_runs_the_web_app_against_the_gateway():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    web = services["web"]
    assert web["command"] == [WEB]
    env = web["environment"]
    accepted = settings_env_names(WebSettings)
    assert {normalise(WebSettings, name) for name in env} <= set(accepted)
    assert env["SYNTHTASKS_WEB_SESSION_KEYS"].startswith("${SYNTHTASKS_WEB_SESSION_KEYS:?")
    assert env["SYNTHTASKS_WEB_LISTEN_ADDRESS"] == "0.0.0.0:8080"
    assert env["SYNTHTASKS_WEB_GATEWAY_ADDRESS"] == f"gateway:{GATEWAY_GRPC_PORT}"
    assert int(env["SYNTHTASKS_WEB_METRICS_PORT"]) == int(field_default(WebSettings, "SYNTHTASKS_WEB_METRICS_PORT"))
    assert any("127.0.0.1:8080/readyz" in part for part in web["healthcheck"]["test"])
    assert web["depends_on"] == {"gateway": {"condition": "service_healthy"}}
    assert web["read_only"] is True and web["cap_drop"] == ["ALL"]
