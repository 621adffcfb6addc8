"""`make lint`, CI and pre-commit run the same checks."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lint_recipe() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None, "the Makefile has no lint target"
    return [line.strip() for line in recipe.group(1).splitlines()]


def _normalized(command: str) -> str:
    """The tool and its arguments, without the venv prefix, the whole-tree `.` and
    pre-commit's --force-exclude (which makes excludes apply to the files it passes)."""
    words = command.replace("$(VENV)/bin/", "").replace(".venv/bin/", "").split()
    return " ".join(w for w in words if w not in {".", "--force-exclude"})


def test_pre_commit_runs_the_checks_of_make_lint():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"]), "hooks must not be fetched"
    recipe = {_normalized(line) for line in _lint_recipe()}
    assert recipe == {"ruff check", "ruff format --check", "mypy", "buf lint protos"}
    assert {_normalized(hook["entry"]) for hook in hooks} == recipe


def test_ci_lints_before_it_tests():
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("make ")]
    assert steps == ["make lint", "make test"]
