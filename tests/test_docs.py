"""The README documents every setting of every service, so a new or renamed setting
cannot go undocumented."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SETTINGS = [
    "services.gateway.config",
    "services.provider_registry.config",
    "services.task_store.config",
    "services.generator_worker.config",
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


def test_the_readme_starts_with_what_it_is_and_the_two_set_up_commands():
    head = README.split("## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in head.splitlines() if line.startswith("make ")]
    assert commands == ["make demo", "make test"]
