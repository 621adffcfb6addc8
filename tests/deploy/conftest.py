"""Session fixtures: the rendered overlays, the tools, the settings classes and console scripts."""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.layout import CPU_FALLBACK, K8S, OVERLAYS, PYPROJECT, SERVICES
from tests.deploy.settings_env import load_settings
from tests.deploy.tools import find_kustomize, render, tool_missing


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    command = find_kustomize()
    if command is None:
        tool_missing(
            "no kustomize v5 renderer (kustomize, or kubectl >= 1.27) on PATH; "
            "install one with `bash deploy/k8s/install-kubectl.sh`"
        )
    return command


@pytest.fixture(scope="session")
def kubernetes_validate():
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        tool_missing("kubernetes-validate is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="session")
def rendered(kustomize, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Every variant's rendered documents: "dev", "prod", "dev+worker-cpu-hpa", ..."""
    out = {overlay: render(kustomize, K8S / "overlays" / overlay) for overlay in OVERLAYS}
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
        out[f"{overlay}+{CPU_FALLBACK}"] = render(kustomize, wrapper)
    return out


@pytest.fixture(scope="session")
def settings_classes() -> dict[str, Any]:
    """Service name -> its Settings class. Errors (not skips) while a class is missing."""
    return {service.name: load_settings(service) for service in SERVICES.values()}


@pytest.fixture(scope="session")
def console_scripts() -> dict[str, str]:
    return tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
