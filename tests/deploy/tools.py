"""The tools the rendering tests need: skipped locally when missing, an error in CI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


def tool_missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (the CI environment variable is set, so this is an error)")
    pytest.skip(reason)


def _major(version: str) -> int:
    match = re.search(r"v?(\d+)\.", version)
    return int(match.group(1)) if match else 0


def find_kustomize() -> list[str] | None:
    """The command that renders a kustomization directory, or None.

    $KUSTOMIZE_BIN (a kustomize binary), else `kustomize` on PATH, else `kubectl
    kustomize`; only kustomize v5 or newer counts (the overlays use `labels` and
    components).
    """
    explicit = os.environ.get("KUSTOMIZE_BIN")
    candidates: list[tuple[list[str], list[str]]] = []
    if explicit:
        candidates.append(([explicit, "build"], [explicit, "version"]))
    if shutil.which("kustomize"):
        candidates.append((["kustomize", "build"], ["kustomize", "version"]))
    if shutil.which("kubectl"):
        candidates.append((["kubectl", "kustomize"], ["kubectl", "version", "--client", "-o", "json"]))
    for build, version_cmd in candidates:
        try:
            out = subprocess.run(version_cmd, capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version_cmd[0] == "kubectl":
            try:
                version = json.loads(out).get("kustomizeVersion", "")
            except json.JSONDecodeError:
                continue
        else:
            version = out.strip()
        if _major(version) >= 5:
            return build
    return None


def render(kustomize: list[str], directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*kustomize, str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"rendering {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
