"""docker compose: start order, published ports and secrets."""

from __future__ import annotations

import re

from tests.deploy.compose import load_compose
from tests.deploy.layout import COMPOSE_FILE, ENV_EXAMPLE


def test_compose_starts_in_order_and_publishes_only_the_gateway_and_web_app_on_loopback():
    services = load_compose()["services"]
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
    # Healthy means its worker processes beat and Redis answers, not that the parent serves metrics.
    assert "http://127.0.0.1:9104/readyz" in " ".join(services["worker"]["healthcheck"]["test"])
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
        for name, spec in load_compose()["services"].items()
        if "SYNTHTASKS_REGISTRY_MASTER_KEYS" in (spec.get("environment") or {})
    }
    assert holders == {"provider-registry", "migrate"}
