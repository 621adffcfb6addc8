"""Running the real `synthtasks` command in a subprocess, as a user or a script would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def synthtasks_command() -> list[str]:
    beside = Path(sys.executable).parent / "synthtasks"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("synthtasks")
    return [found] if found else [sys.executable, "-m", "synthtasks_cli"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def ok(self) -> Result:
        assert self.code == 0, f"exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return self


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 120, cwd: Path | None = None
) -> Result:
    done = subprocess.run(
        [*synthtasks_command(), *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any synthtasks or LLM settings, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNTHTASKS_", "OPENAI_", "AZURE_OPENAI_"))
    }
    env.update({"COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra})
    return env


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names of this test's own (the shared stack outlives every test)."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
