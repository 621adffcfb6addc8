"""Every overlay renders, validates, is namespaced, and handles secrets as documented."""

from __future__ import annotations

import base64

import pytest
import yaml

from tests.deploy.documents import containers, of_kind, pod_templates
from tests.deploy.layout import (
    CPU_FALLBACK,
    CUSTOM_RESOURCE_KINDS,
    NAMESPACES,
    OLDEST_KUBERNETES,
    OVERLAYS,
    SECRET_EXAMPLE,
    VARIANTS,
)


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
    for _, template in pod_templates(docs):
        for container in containers(template["spec"]):
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
        assert not of_kind(docs, "Secret"), "prod Secrets are created outside git"
        missing = _secret_refs(docs) - documented
        assert not missing, f"referenced but not in secret.example.yaml: {sorted(missing)}"


def test_dev_secrets_exist_and_are_marked_insecure(rendered):
    docs = rendered["dev"]
    secrets = {doc["metadata"]["name"]: doc for doc in of_kind(docs, "Secret")}
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
