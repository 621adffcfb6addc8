"""Rules for values the task store accepts, each raising InvalidArgument with the
request field to blame (`staged_text.tags[2]`). The gateway validates too; the task
store checks again because it is the one that writes."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

from services.runtime.errors import InvalidArgument
from services.vocabulary import limits, names
from services.vocabulary.quoting import quoted

MAX_TAGS = 32
MAX_TAG_LENGTH = 64
MAX_TEXT_LENGTH = 20_000
MAX_BATCH_NAMES = 1000
MAX_RESULTS_PER_APPEND = 1000
MAX_QUERY_LENGTH = 1000
MAX_SHORT_STRING = 256

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Cc: C0/C1 controls (incl. NUL, tab, newline); Zl/Zp: line and paragraph separators.
_CONTROL_CATEGORIES = {"Cc", "Zl", "Zp"}


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in value)


def tags(values: Iterable[str], *, field: str) -> tuple[str, ...]:
    """Stripped, checked and deduplicated (first occurrence kept, order preserved)."""
    seen: dict[str, None] = {}
    for index, raw in enumerate(values):
        seen.setdefault(tag(raw, field=f"{field}[{index}]"), None)
    if len(seen) > MAX_TAGS:
        raise InvalidArgument.field(field, f"must hold at most {MAX_TAGS} distinct tags")
    return tuple(seen)


def tag(raw: str, *, field: str) -> str:
    value = raw.strip()
    if not value:
        raise InvalidArgument.field(field, "must not be empty")
    if len(value) > MAX_TAG_LENGTH:
        raise InvalidArgument.field(field, f"must be at most {MAX_TAG_LENGTH} characters")
    if has_control_characters(value):
        raise InvalidArgument.field(field, "must not contain control characters")
    return value


def edited_text(value: str, *, field: str) -> str:
    """A reviewer's edit of a staged text."""
    if not value.strip():
        raise InvalidArgument.field(field, "must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise InvalidArgument.field(field, f"must be at most {MAX_TEXT_LENGTH} characters")
    no_nul(value, field=field)
    return value


def generated_text(value: str, *, field: str) -> str:
    """A text as a provider produced it: kept verbatim, but Postgres cannot store NUL."""
    if not value.strip():
        raise InvalidArgument.field(field, "must not be empty (report an empty answer as a failure)")
    no_nul(value, field=field)
    return value


def no_nul(value: str, *, field: str) -> str:
    if "\x00" in value:
        raise InvalidArgument.field(field, "must not contain NUL characters")
    return value


def at_most(value: int, limit: int, *, field: str) -> int:
    if value > limit:
        raise InvalidArgument.field(field, f"must be at most {limit}")
    return value


def short_string(value: str, *, field: str, limit: int = MAX_SHORT_STRING) -> str:
    if len(value) > limit:
        raise InvalidArgument.field(field, f"must be at most {limit} characters")
    if has_control_characters(value):
        raise InvalidArgument.field(field, "must not contain control characters")
    return value


def required(value: str, *, field: str) -> str:
    if not value.strip():
        raise InvalidArgument.field(field, "is required")
    return value


def prompt(value: str, *, field: str, optional: bool = False) -> str:
    if not optional:
        required(value, field=field)
    if len(value) > limits.MAX_PROMPT_CHARS:
        raise InvalidArgument.field(field, f"must be at most {limits.MAX_PROMPT_CHARS} characters")
    return no_nul(value, field=field)


def temperature(value: float, *, field: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 2.0:
        raise InvalidArgument.field(field, "must be between 0 and 2")
    return value


def text_count(value: int, *, field: str) -> int:
    if not 1 <= value <= limits.MAX_TEXT_COUNT:
        raise InvalidArgument.field(field, f"must be between 1 and {limits.MAX_TEXT_COUNT}")
    return value


def non_negative(value: int, *, field: str) -> int:
    if value < 0:
        raise InvalidArgument.field(field, "must not be negative")
    return value


def provider(value: str, *, field: str) -> str:
    if not value:
        raise InvalidArgument.field(field, "is required: the gateway resolves the project's default provider")
    names.parse_provider(value, field=field)
    return value


def variable_name(value: str, *, field: str) -> str:
    if not _VARIABLE_NAME.fullmatch(value):
        raise InvalidArgument.field(field, "must be a placeholder name: a letter or _, then letters, digits or _")
    return value


def variable_values(values: Sequence[str], *, field: str) -> tuple[str, ...]:
    if not values:
        raise InvalidArgument.field(field, "must hold at least one value")
    for index, value in enumerate(values):
        prompt(value, field=f"{field}[{index}]", optional=True)
    return tuple(values)


def variables_map(values: dict[str, str], *, field: str) -> dict[str, str]:
    """A text's variable values: stored as JSON, which cannot hold NUL either."""
    for key, value in values.items():
        no_nul(key, field=f"{field}[{key}]")
        no_nul(value, field=f"{field}[{key}]")
    return dict(values)


def query(value: str, *, field: str) -> str:
    if len(value) > MAX_QUERY_LENGTH:
        raise InvalidArgument.field(field, f"must be at most {MAX_QUERY_LENGTH} characters")
    return no_nul(value, field=field)


def batch_size(count: int, *, field: str, limit: int = MAX_BATCH_NAMES) -> None:
    if count > limit:
        raise InvalidArgument.field(field, f"must hold at most {limit} entries")


def update_mask(
    paths: Sequence[str], *, allowed: Sequence[str], populated: Iterable[str], field: str = "update_mask"
) -> set[str]:
    """The mask's paths; `*` means every allowed path. AIP-134: an omitted mask means
    every allowed field the request populates (so empty tags are left alone, not cleared)."""
    if not paths:
        return {path for path in populated if path in allowed}
    chosen: set[str] = set()
    for index, path in enumerate(paths):
        if path == "*":
            chosen.update(allowed)
        elif path in allowed:
            chosen.add(path)
        else:
            raise InvalidArgument.field(
                f"{field}.paths[{index}]", f"{quoted(path)} cannot be updated; updatable: {', '.join(allowed)}"
            )
    return chosen
