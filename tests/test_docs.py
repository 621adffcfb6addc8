"""The README documents every setting of every service with its default, so a new or
renamed setting cannot go undocumented and a changed default cannot leave the README
behind."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SETTINGS = [
    "services.gateway.config",
    "services.provider_registry.config",
    "services.task_store.config",
    "services.generator_worker.config",
    "services.web.config",
]


def primary_env_names(settings_cls) -> list[str]:
    """The name each field is documented under: its alias, else env_prefix + field name."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    return [
        field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name}".upper()
        for name, field in settings_cls.model_fields.items()
    ]


@pytest.mark.parametrize("module", SETTINGS)
def test_the_readme_documents_every_setting(module):
    settings_cls = importlib.import_module(module).Settings
    missing = [name for name in primary_env_names(settings_cls) if f"`{name}`" not in README]
    assert not missing, f"document these in README.md: {missing}"


def documented_defaults() -> dict[str, str]:
    """Variable -> default, from the README's tables: a row `a`, `b` | `1`, `2` | ...
    documents a = 1 and b = 2. Rows whose default is not in backticks ("required") are
    left out."""
    defaults = {}
    for line in README.splitlines():
        cells = line.split("|")
        if len(cells) < 4:
            continue
        names, values = re.findall(r"`([A-Z0-9_]+)`", cells[1]), re.findall(r"`([^`]*)`", cells[2])
        if names and len(names) == len(values):
            defaults.update(zip(names, values, strict=True))
    return defaults


def _as_documented(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize("module", SETTINGS)
def test_the_readme_shows_each_settings_real_default(module):
    settings_cls = importlib.import_module(module).Settings
    documented = documented_defaults()
    wrong = {
        name: (documented[name], _as_documented(field.default))
        for name, field in zip(primary_env_names(settings_cls), settings_cls.model_fields.values(), strict=True)
        if name in documented and field.default is not None and documented[name] != _as_documented(field.default)
    }
    assert not wrong, f"README default differs from the code (README, code): {wrong}"


def test_the_readme_starts_with_what_it_is_and_the_two_set_up_commands():
    head = README.split("## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in head.splitlines() if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
