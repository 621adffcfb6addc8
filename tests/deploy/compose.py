"""Reading docker-compose.yml."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from tests.deploy.layout import COMPOSE_FILE, SERVICES, Service


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_commands(command: str | list[str]) -> list[list[str]]:
    """The programs a compose `command` runs; `sh -c "a && b"` counts as a and b."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"] or argv[:2] == ["/bin/sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", argv[2]) if part.strip()]
    return [argv]


def synthtasks_compose_services() -> dict[str, tuple[dict[str, Any], list[Service]]]:
    out = {}
    for name, spec in load_compose()["services"].items():
        if "command" not in spec:
            continue
        runs = [SERVICES[argv[0]] for argv in compose_commands(spec["command"]) if argv[0] in SERVICES]
        if runs:
            out[name] = (spec, runs)
    return out
