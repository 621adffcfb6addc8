"""The Dockerfile: a non-root runtime stage, and a .dockerignore that lets the build in."""

from __future__ import annotations

import json
import re
import tomllib

from tests.deploy.layout import DOCKERFILE, IMAGE_UID, PYPROJECT, REPO


def _dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    lines: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    stages: dict[str, list[str]] = {}
    name = None
    for line in lines:
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, flags=re.IGNORECASE)
        if match:
            name = match.group(1)
            stages[name] = []
        elif name is not None:
            stages[name].append(line)
    return stages


def test_dockerfile_final_stage_is_the_non_root_runtime_without_toolchain(console_scripts):
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, flags=re.MULTILINE)
    stages = _dockerfile_stages()
    assert list(stages)[-1] == "runtime", "the default target must be the runtime image"
    assert set(stages) == {"builder", "runtime"}
    runtime = stages["runtime"]
    assert f"USER {IMAGE_UID}:{IMAGE_UID}" in runtime
    assert not any(line.startswith("ENTRYPOINT") for line in runtime)
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies == ["COPY --from=builder /opt/synthtasks /opt/synthtasks"]
    assert not any(re.search(r"build-essential|\bgcc\b|\bcmake\b|pip install", line) for line in runtime)
    [healthcheck] = [line for line in runtime if line.startswith("HEALTHCHECK")]
    assert "synthtasks-healthcheck" in healthcheck and "synthtasks-healthcheck" in console_scripts
    [cmd] = [line for line in runtime if line.startswith("CMD")]
    assert json.loads(cmd[3:].strip())[0] in console_scripts
    assert not any("llama" in line.lower() for stage in stages.values() for line in stage)
    local_llm = (REPO / "deploy/local-llm/Dockerfile").read_text()
    assert "llama_cpp.server" in local_llm and "--n_threads" in local_llm


def test_dockerignore_lets_in_what_the_build_copies():
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for stage in _dockerfile_stages().values():
        for line in stage:
            if line.startswith("COPY") and "--from=" not in line:
                copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert copied <= allowed, f"COPY sources kept out by .dockerignore: {sorted(copied - allowed)}"
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project.get("readme", "README.md") in allowed
