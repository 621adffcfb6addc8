"""Pre-annotation: asking for a text with its entities, reading the reply, and placing
the entities in the text. Pure functions, no I/O (generation.py makes the calls).

The model returns each entity's surface text, never offsets (models cannot count
characters); `locate` computes the offsets by finding the surface texts in the text:

- entities are placed in the order the model lists them, each at its first occurrence
  that overlaps no entity placed before it, so an entity listed twice marks two
  occurrences, and two entities never claim the same characters;
- an entity whose surface text does not occur (free of overlap) is dropped and counted,
  never guessed;
- a prompt variable bound to a label (`{drug}` -> DRUG) always has its value marked:
  when the model did not return it with that label (alone or inside a longer entity),
  its first free occurrence is added; when the model returned it under another label,
  the binding wins (the value is what the prompt asked for). When the value does not
  occur in the text at all, the text is kept and the value is counted with the dropped
  entities: the text is still a good text, and the entity balance, read from the stored
  spans, shows the gap.

Offsets are Python string indices (code points) over the text, end exclusive, like
synthtasks.v1.Span.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from openai.types.shared_params import ResponseFormatJSONObject, ResponseFormatJSONSchema
from pydantic import BaseModel, ConfigDict, ValidationError
from synthtasks.v1 import provider_service_pb2 as provider_pb

# Repair requests after a reply that is not the asked-for JSON, before the slot fails.
MAX_REPAIRS = 1
# How many of pydantic's complaints a repair request and a failure message quote.
_MAX_PROBLEMS = 3
_SCHEMA_NAME = "annotated_text"


@dataclass(frozen=True)
class Label:
    name: str
    description: str


@dataclass(frozen=True)
class Entity:
    """An entity as the model names it: a surface text and a label, no offsets."""

    text: str
    label: str


@dataclass(frozen=True)
class Reply:
    text: str
    entities: tuple[Entity, ...]


@dataclass(frozen=True)
class Located:
    """Characters [start, end) of the text carry `label`; text[start:end] == surface."""

    start: int
    end: int
    label: str
    surface: str


@dataclass
class Placement:
    spans: list[Located] = field(default_factory=list)
    # Entities the model named that could not be placed, plus bound values absent from the text.
    dropped: int = 0


class BadReply(ValueError):
    """The reply is not the asked-for JSON; the message says what is wrong, for the
    repair request and the slot's failure."""


class _EntityModel(BaseModel):
    # Extra keys (a model adding "start" or "confidence") are ignored rather than fatal.
    model_config = ConfigDict(extra="ignore")
    text: str
    label: str


class _ReplyModel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    entities: list[_EntityModel]


def response_format(mode: int, labels: Sequence[Label]) -> ResponseFormatJSONSchema | ResponseFormatJSONObject:
    """The `response_format` request parameter for the provider's StructuredOutputMode."""
    if mode == provider_pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": _SCHEMA_NAME, "strict": True, "schema": reply_schema(labels)},
    }


def reply_schema(labels: Sequence[Label]) -> dict[str, object]:
    """A strict JSON schema (every property required, no others) whose labels are an enum,
    so that a schema-constrained provider cannot return an unknown label."""
    entity = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "the entity exactly as written in the text"},
            "label": {"type": "string", "enum": [label.name for label in labels]},
        },
        "required": ["text", "label"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"text": {"type": "string"}, "entities": {"type": "array", "items": entity}},
        "required": ["text", "entities"],
        "additionalProperties": False,
    }


def instructions(labels: Sequence[Label], bound: Mapping[str, str]) -> str:
    """What the model is told besides the job's prompt; `bound` maps values the text must
    mention to their labels. Spells out the JSON shape because JSON mode has no schema
    (and says "JSON", which OpenAI's JSON mode requires in the messages)."""
    lines = [
        "Write the text asked for, then list its entities. Reply with one JSON object and nothing else:",
        '{"text": "<the text>", "entities": [{"text": "<entity>", "label": "<LABEL>"}]}',
        (
            "List every mention of these labels, in the order they appear in the text. Copy each entity's "
            "text character for character from the text; do not give positions."
        ),
        "Labels:",
        *(f"- {label.name}: {label.description}" if label.description else f"- {label.name}" for label in labels),
    ]
    if bound:
        lines.append("The text must mention, and the entities must include:")
        lines.extend(f"- {json.dumps(value, ensure_ascii=False)} as {label}" for value, label in bound.items())
    return "\n".join(lines)


def parse(content: str, label_names: Sequence[str]) -> Reply:
    """The reply's text and entities; raises BadReply when it is not the asked-for shape
    or names a label the job does not have."""
    try:
        model = _ReplyModel.model_validate_json(content)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'the reply'}: {item['msg']}"
            for item in error.errors(include_url=False)[:_MAX_PROBLEMS]
        ]
        raise BadReply("; ".join(problems)) from None
    unknown = [
        f"entities.{index}.label: {entity.label!r} is not one of {', '.join(label_names)}"
        for index, entity in enumerate(model.entities)
        if entity.label not in label_names
    ]
    if unknown:
        raise BadReply("; ".join(unknown[:_MAX_PROBLEMS]))
    return Reply(model.text, tuple(Entity(entity.text, entity.label) for entity in model.entities))


def repair_request(problem: str) -> str:
    """The user message that asks the model to answer again after a bad reply."""
    return (
        f"Your reply was not the JSON object asked for ({problem}). Reply again with only the JSON object "
        '{"text": ..., "entities": [{"text": ..., "label": ...}]}, using only the labels listed.'
    )


def locate(text: str, entities: Sequence[Entity], bound: Mapping[str, str]) -> Placement:
    """Offsets for `entities` in `text`, then for the `bound` values (value -> label);
    the rules are in the module docstring."""
    placement = Placement()
    for entity in entities:
        surface = entity.text.strip()
        start = _free_occurrence(text, surface, placement.spans) if surface else None
        if start is None:
            placement.dropped += 1
        else:
            placement.spans.append(Located(start, start + len(surface), entity.label, surface))
    for value, label in bound.items():
        if not value:
            continue
        if any(span.label == label and value in span.surface for span in placement.spans):
            continue  # marked, maybe inside a longer entity ("aspirin tablets")
        same_surface = [i for i, span in enumerate(placement.spans) if span.surface == value]
        if same_surface:
            first = placement.spans[same_surface[0]]
            placement.spans[same_surface[0]] = Located(first.start, first.end, label, first.surface)
            continue
        start = _free_occurrence(text, value, placement.spans)
        if start is None:
            placement.dropped += 1
        else:
            placement.spans.append(Located(start, start + len(value), label, value))
    placement.spans.sort(key=lambda span: (span.start, span.end))
    return placement


def _free_occurrence(text: str, surface: str, taken: Sequence[Located]) -> int | None:
    """The first index where `surface` occurs in `text` without overlapping `taken`."""
    start = text.find(surface)
    while start != -1:
        end = start + len(surface)
        if all(end <= span.start or start >= span.end for span in taken):
            return start
        start = text.find(surface, start + 1)
    return None
