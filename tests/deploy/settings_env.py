"""The environment variable names a pydantic-settings class accepts."""

from __future__ import annotations

import importlib
from typing import Any

from tests.deploy.layout import Service


def _alias_names(alias: Any) -> list[str]:
    """Environment names that a validation_alias stands for (str, AliasPath, AliasChoices)."""
    from pydantic import AliasChoices, AliasPath

    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasPath):
        return [alias.path[0]] if isinstance(alias.path[0], str) else []
    if isinstance(alias, AliasChoices):
        return [name for choice in alias.choices for name in _alias_names(choice)]
    return []


def _nested_model(annotation: Any):
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():  # Optional[Model], Model | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _by_name_and_alias(config) -> tuple[bool, bool]:
    """(populate by field name, populate by alias), as pydantic resolves model_config."""
    by_alias = config.get("validate_by_alias") is not False
    by_name = config.get("validate_by_name")
    if by_name is None:
        by_name = config.get("populate_by_name")
    if by_name is None:
        by_name = not by_alias
    return bool(by_name), by_alias


def settings_env_names(settings_cls) -> dict[str, str]:
    """Every environment variable name `settings_cls` reads -> the field it sets.

    As pydantic-settings resolves them: a field's validation_alias (each choice of an
    AliasChoices, the first key of an AliasPath) names the variable, without env_prefix
    unless env_prefix_target is "alias" or "all"; a field without an alias, or any field
    when populating by name is enabled (populate_by_name / validate_by_name), is read
    from env_prefix + field name. Names are upper-cased unless the class is
    case-sensitive. Nested models add NAME<delimiter>SUBFIELD names when
    env_nested_delimiter is set.
    """
    config = settings_cls.model_config
    prefix = config.get("env_prefix") or ""
    target = config.get("env_prefix_target") or "variable"
    alias_prefix = prefix if target in ("alias", "all") else ""
    name_prefix = prefix if target in ("variable", "all") else ""
    by_name, by_alias = _by_name_and_alias(config)
    case_sensitive = bool(config.get("case_sensitive", False))
    delimiter = config.get("env_nested_delimiter")
    names: dict[str, str] = {}
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias if field.validation_alias is not None else field.alias
        bases = [alias_prefix + name for name in _alias_names(alias)] if alias is not None and by_alias else []
        if not bases or by_name:
            bases.append(name_prefix + field_name)
        nested = _nested_model(field.annotation)
        for base in bases:
            names[base] = field_name
            if delimiter and nested is not None:
                for sub_name in nested.model_fields:
                    names[f"{base}{delimiter}{sub_name}"] = field_name
    if not case_sensitive:
        names = {name.upper(): field for name, field in names.items()}
    return names


def normalise(settings_cls, name: str) -> str:
    return name if settings_cls.model_config.get("case_sensitive", False) else name.upper()


def load_settings(service: Service):
    module, _, cls = service.settings.partition(":")
    return getattr(importlib.import_module(module), cls)


def field_default(settings_cls, env_name: str) -> Any:
    field_name = settings_env_names(settings_cls)[normalise(settings_cls, env_name)]
    field = settings_cls.model_fields[field_name]
    return field.get_default(call_default_factory=True)


def required_env(settings_cls) -> dict[str, set[str]]:
    """Required field -> the environment names any of which provides it."""
    required: dict[str, set[str]] = {}
    for name, field in settings_env_names(settings_cls).items():
        if settings_cls.model_fields[field].is_required():
            required.setdefault(field, set()).add(name)
    return required
