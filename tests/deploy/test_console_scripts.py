"""Kubernetes and docker compose run console scripts with real settings."""

from __future__ import annotations

import ipaddress

import pytest

from tests.deploy.compose import compose_commands, load_compose, synthtasks_compose_services
from tests.deploy.documents import container_env, host_of, port_of, service_of, synthtasks_containers
from tests.deploy.layout import ADDRESS_SETTINGS, OVERLAYS, SERVICES_BY_NAME, WEB_SCRIPT
from tests.deploy.settings_env import field_default, normalise, required_env, settings_env_names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_containers_run_console_scripts_with_real_settings(
    rendered, settings_classes, console_scripts, overlay
):
    docs = rendered[overlay]
    checked = set()
    for workload, _, container in synthtasks_containers(docs):
        where = f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
        assert "args" not in container or container.get("command"), where
        command = container["command"]
        assert command[0] in console_scripts, f"{where}: {command[0]} is not in [project.scripts]"
        if command[0] == WEB_SCRIPT:
            continue
        service = service_of(command)
        settings = settings_classes[service.name]
        accepted = settings_env_names(settings)
        env = container_env(container, docs)
        unknown = {name for name in env if normalise(settings, name) not in accepted}
        assert not unknown, f"{where}: not settings of {service.settings}: {sorted(unknown)}"
        given = {normalise(settings, name) for name in env}
        for field, names in required_env(settings).items():
            assert names & given, f"{where}: required setting {field} ({sorted(names)}) is not set"
        checked.add(service.name)
    assert checked == set(SERVICES_BY_NAME)


def test_compose_runs_console_scripts_with_real_settings(settings_classes, console_scripts):
    services = synthtasks_compose_services()
    assert set(services) == {"migrate", "provider-registry", "task-store", "gateway", "worker"}
    ran = set()
    for name, (spec, runs) in services.items():
        for argv in compose_commands(spec["command"]):
            assert argv[0] in console_scripts, f"{name}: {argv[0]} is not in [project.scripts]"
        env = spec.get("environment", {})
        assert isinstance(env, dict), f"{name}: use the mapping form of environment"
        assert "env_file" not in spec, f"{name}: pass secrets one by one (see the file's header)"
        for service in runs:
            ran.add(service.name)
            settings = settings_classes[service.name]
            given = {normalise(settings, key) for key in env}
            for field, names in required_env(settings).items():
                assert names & given, f"{name}: required setting {field} ({sorted(names)}) is not set"
        unknown = {
            key
            for key in env
            if not any(
                normalise(settings_classes[s.name], key) in settings_env_names(settings_classes[s.name]) for s in runs
            )
        }
        assert not unknown, f"{name}: not settings of {[s.name for s in runs]}: {sorted(unknown)}"
    assert ran == set(SERVICES_BY_NAME)


def test_compose_ports_addresses_and_health_checks_match_the_services(settings_classes):
    compose = load_compose()["services"]
    for name, (spec, runs) in synthtasks_compose_services().items():
        if name == "migrate":
            continue
        [service] = runs
        assert name == service.name, "compose service names match the Kubernetes components"
        settings = settings_classes[service.name]
        env = spec["environment"]
        assert int(env[service.metrics_env]) == int(field_default(settings, service.metrics_env))
        health = spec["healthcheck"]["test"]
        if service.grpc_port is None:
            assert ipaddress.ip_address(env[service.metrics_host_env]).is_unspecified, name
            assert any(f"127.0.0.1:{service.metrics_port}" in part for part in health), name
            continue
        default_port = port_of(field_default(settings, service.listen_env))
        assert env[service.listen_env] == f"0.0.0.0:{default_port}", name
        assert health[:2] == ["CMD", "synthtasks-healthcheck"] and port_of(health[2]) == default_port
    for service_name, (spec, _) in synthtasks_compose_services().items():
        for key, value in spec.get("environment", {}).items():
            if key in ADDRESS_SETTINGS:
                target = SERVICES_BY_NAME[ADDRESS_SETTINGS[key]]
                assert host_of(value) in compose, f"{service_name}: {key}={value}"
                assert port_of(value) == target.grpc_port, f"{service_name}: {key}={value}"
