"""Pods run hardened, with probes, ports and addresses that match the services."""

from __future__ import annotations

import ipaddress

import pytest

from tests.deploy.documents import (
    container_env,
    containers,
    host_of,
    is_synthtasks_image,
    named,
    of_kind,
    pod_templates,
    port_of,
    synthtasks_containers,
)
from tests.deploy.layout import ADDRESS_SETTINGS, IMAGE_UID, OVERLAYS, SERVICES, SERVICES_BY_NAME, WEB_SCRIPT
from tests.deploy.settings_env import field_default


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_hardened(rendered, overlay):
    for workload, template in pod_templates(rendered[overlay]):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = template["spec"]
        assert pod.get("automountServiceAccountToken") is False, where
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        mounts_tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in containers(pod):
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
            if is_synthtasks_image(container):
                assert security["runAsUser"] == IMAGE_UID and pod_security["runAsUser"] == IMAGE_UID, here
                tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp and tmp[0]["name"] in mounts_tmp, f"{here}: /tmp must be an emptyDir"


def test_dev_runs_datastores_and_prod_does_not(rendered):
    dev_sets = {doc["metadata"]["name"] for doc in of_kind(rendered["dev"], "StatefulSet")}
    assert dev_sets == {"synthtasks-postgres", "synthtasks-redis"}
    assert not of_kind(rendered["prod"], "StatefulSet")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_ports_match_the_services(rendered, settings_classes, overlay):
    docs = rendered[overlay]
    deployments = {
        doc["spec"]["template"]["spec"]["containers"][0]["command"][0]: doc for doc in of_kind(docs, "Deployment")
    }
    assert set(deployments) == {*SERVICES, WEB_SCRIPT}, "one Deployment per service"
    for script, deployment in deployments.items():
        if script == WEB_SCRIPT:
            continue
        service = SERVICES[script]
        settings = settings_classes[service.name]
        pod = deployment["spec"]["template"]
        [container] = pod["spec"]["containers"]
        env = container_env(container, docs)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        metrics_default = int(field_default(settings, service.metrics_env))
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
            # The worker processes' health, not the parent's /metrics (liveness.py).
            paths = {probe: container[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe")}
            assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz"}
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            stale = float(field_default(settings, "SYNTHTASKS_WORKER_LIVENESS_STALE_SECONDS"))
            liveness = container["livenessProbe"]
            assert liveness["periodSeconds"] * liveness["failureThreshold"] > stale, "a busy moment is not a restart"
            continue
        default_port = port_of(field_default(settings, service.listen_env))
        assert default_port == service.grpc_port, "docs/conventions.md and the settings disagree"
        listen = env[service.listen_env]
        assert ipaddress.ip_address(host_of(listen)).is_unspecified, f"{service.listen_env}={listen}"
        assert port_of(listen) == ports["grpc"] == default_port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == default_port, probe
        svc = named(docs, "Service", deployment["metadata"]["name"])
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        by_name = {port["name"]: port for port in svc["spec"]["ports"]}
        assert by_name["grpc"]["port"] == default_port and by_name["grpc"]["targetPort"] == "grpc"
        assert by_name["metrics"]["port"] == metrics_default


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_addresses_of_other_services_point_at_their_kubernetes_services(rendered, overlay):
    docs = rendered[overlay]
    services = {doc["metadata"]["name"]: doc for doc in of_kind(docs, "Service")}
    seen = set()
    for _, _, container in synthtasks_containers(docs):
        for name, value in container_env(container, docs).items():
            if name in ADDRESS_SETTINGS:
                target = SERVICES_BY_NAME[ADDRESS_SETTINGS[name]]
                service = services[host_of(value)]
                assert service["spec"]["selector"]["app.kubernetes.io/component"] == target.name
                grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
                assert port_of(value) == grpc["port"] == target.grpc_port, f"{name}={value}"
                seen.add(name)
    assert seen == set(ADDRESS_SETTINGS)


def test_production_refuses_private_provider_endpoints_and_development_allows_them(rendered):
    def registry_setting(overlay: str) -> str | None:
        registry = named(rendered[overlay], "Deployment", "synthtasks-provider-registry")
        [container] = [c for c in registry["spec"]["template"]["spec"]["containers"] if is_synthtasks_image(c)]
        return container_env(container, rendered[overlay]).get("SYNTHTASKS_REGISTRY_ALLOW_PRIVATE_ENDPOINTS")

    assert registry_setting("prod") == "false"
    assert registry_setting("dev") is None, "the control: development keeps the default (allowed)"
