"""Structured output (`response_format`) as the fake answers it: the text with its
entities, or on demand the broken replies real models give (malformed JSON, another
shape, an entity that is not in the text).

The fake knows one shape, the one the worker asks for (services/generator_worker/annotation.py):
``{"text": str, "entities": [{"text": str, "label": str}]}``. Which words are entities
comes from ``FakeConfig.entity_lexicon`` (surface text -> label): every lexicon entry
that occurs in the user prompt is returned as an entity, so a test that puts variable
values in the lexicon gets exactly those values back and can check how they are bound.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from synthtasks_fake_llm import wire

# What a test can ask every structured reply (or the next `structured_fault_count`) to be.
STRUCTURED_FAULTS = ("malformed_json", "wrong_shape", "unlocatable_entity")
# An entity the reply text never contains, for "unlocatable_entity".
UNLOCATABLE_SURFACE = "zz-not-in-the-text"


def response_format_error(body: dict[str, Any]) -> web.Response | None:
    """The 400 OpenAI gives for a response_format it would refuse, or None when it is usable."""
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        # OpenAI's own rule: JSON mode without the word in the prompt can loop on whitespace.
        if not any("json" in wire.message_text(m).lower() for m in body["messages"]):
            return wire.invalid_request(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
        return None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("name"), str)
            or not isinstance(spec.get("schema"), dict)
        ):
            return wire.invalid_request(
                "Missing required parameter: 'response_format.json_schema' (with 'name' and 'schema').",
                param="response_format.json_schema",
            )
        if spec.get("strict") and (problem := _strict_problem(spec["schema"], "()")) is not None:
            return wire.invalid_request(
                f"Invalid schema for response_format '{spec['name']}': {problem}", param="response_format"
            )
        if (problem := _shape_problem(spec["schema"])) is not None:
            return wire.invalid_request(
                f"The fake provider cannot fill this schema: {problem}", param="response_format"
            )
        return None
    return wire.invalid_request(
        f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema', and 'text'.",
        param="response_format.type",
    )


def wants_structured(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def annotated_reply(text: str, prompt: str, lexicon: dict[str, str], body: dict[str, Any], fault: str | None) -> str:
    """The JSON content of one structured choice about `prompt`, broken as `fault` says."""
    allowed = _schema_labels(body)
    entities = [
        {"text": surface, "label": label}
        for surface, label in lexicon.items()
        if surface in prompt and (allowed is None or label in allowed)
    ]
    if fault == "malformed_json":
        # Cut mid-object, as a reply that ran out of tokens is.
        return json.dumps({"text": text, "entities": entities})[:-3]
    if fault == "wrong_shape":
        return json.dumps({"content": text, "labels": [e["label"] for e in entities]})
    if fault == "unlocatable_entity":
        label = sorted(allowed)[0] if allowed else next(iter(lexicon.values()), "ENTITY")
        entities.append({"text": UNLOCATABLE_SURFACE, "label": label})
    return json.dumps({"text": text, "entities": entities})


def _schema_labels(body: dict[str, Any]) -> set[str] | None:
    """The labels a json_schema request allows (its enum), or None when it does not say."""
    response_format = body["response_format"]
    if response_format["type"] != "json_schema":
        return None
    schema = response_format["json_schema"]["schema"]
    label = schema["properties"]["entities"].get("items", {}).get("properties", {}).get("label", {})
    enum = label.get("enum") if isinstance(label, dict) else None
    return set(enum) if isinstance(enum, list) else None


def _shape_problem(schema: dict[str, Any]) -> str | None:
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return "the root must be an object with properties"
    if set(properties) != {"text", "entities"}:
        return "the root's properties must be 'text' and 'entities'"
    items = properties["entities"].get("items") if isinstance(properties["entities"], dict) else None
    if not isinstance(items, dict) or set(items.get("properties", {})) != {"text", "label"}:
        return "each entity must be an object with 'text' and 'label'"
    return None


def _strict_problem(schema: Any, context: str) -> str | None:
    """OpenAI's strict-mode rules that a hand-built schema most easily breaks."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties", {})
        missing = sorted(set(properties) - set(schema.get("required", [])))
        if missing:
            return (
                f"In context={context}, 'required' is required to include every key in properties. "
                f"Missing '{missing[0]}'."
            )
        for name, sub in properties.items():
            if (problem := _strict_problem(sub, f"('properties', '{name}')")) is not None:
                return problem
    if schema.get("type") == "array":
        return _strict_problem(schema.get("items"), f"{context}, 'items'")
    return None
