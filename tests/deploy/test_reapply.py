"""`kubectl apply -k` of an overlay works twice in a row across a configuration change:
rendering before and after the change differs only in fields Kubernetes lets an apply
change (no Job whose template would have to change, no selector, no StatefulSet claim)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.deploy.layout import K8S, OVERLAYS
from tests.deploy.tools import find_kustomize, render, tool_missing

# kind -> the spec fields an update of an existing object may not change.
IMMUTABLE_SPEC_FIELDS = {
    "Job": ("template", "selector"),
    "Deployment": ("selector",),
    "DaemonSet": ("selector",),
    "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
    "Service": ("clusterIP", "clusterIPs", "ipFamilies"),
    "PersistentVolumeClaim": ("accessModes", "storageClassName", "volumeMode", "volumeName"),
}


def _by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def _immutable_parts(doc: dict[str, Any]) -> dict[str, Any]:
    parts = {field: doc.get("spec", {}).get(field) for field in IMMUTABLE_SPEC_FIELDS.get(doc["kind"], ())}
    if doc.get("immutable"):
        parts.update(data=doc.get("data"), binaryData=doc.get("binaryData"), stringData=doc.get("stringData"))
    return parts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_configuration_change_re_applies_without_touching_an_immutable_field(overlay, tmp_path):
    kustomize = find_kustomize()
    if kustomize is None:
        tool_missing("no kustomize v5 renderer on PATH; install one with `bash deploy/k8s/install-kubectl.sh`")
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    before = _by_identity(render(kustomize, tree / "overlays" / overlay))
    # The settings of both services that migrate (the old migration Job embedded them).
    for service, setting in (("provider-registry", "REGISTRY"), ("task-store", "TASK_STORE")):
        settings = tree / "base" / "config" / f"{service}.env"
        settings.write_text(settings.read_text() + f"SYNTHTASKS_{setting}_POOL_MAX_SIZE=12\n")
    after = _by_identity(render(kustomize, tree / "overlays" / overlay))

    # Positive control: the change reached the render (new ConfigMap names, which the
    # Deployments' templates pick up, so their pods roll).
    assert set(before) != set(after)
    changed = {name for (kind, name), doc in after.items() if kind == "Deployment" and doc != before[(kind, name)]}
    assert changed == {"synthtasks-provider-registry", "synthtasks-task-store"}

    assert not [name for kind, name in after if kind == "Job"], "a Job's template is immutable: use init containers"
    for identity in set(before) & set(after):
        assert _immutable_parts(before[identity]) == _immutable_parts(after[identity]), identity
