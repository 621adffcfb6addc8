"""Prompt templates with `{name}` placeholders, and which values each slot of a job gets.

Syntax: `{name}` (an identifier) is a placeholder; `{{` and `}}` are literal braces. Any
other brace is a syntax error, so a typo like `{drug name}` is refused at job creation
instead of reaching the model. Rendering always un-escapes `{{`/`}}`, with or without
variables.

Spreading (`slot_variables`): with C combinations of the variables' values (their
product, in the order the variables are given, the first one varying slowest) and N
texts, slot k (0-based) gets:

- when C <= N: combination number floor(k * C / N). Every combination gets floor(N/C) or
  ceil(N/C) texts, and they come in contiguous runs, so neighbouring slots share a prompt
  and one provider request can ask for several choices (n > 1) of it;
- when C > N (not every combination can appear): variable j takes value
  (k + floor(k / W_j)) mod L_j, where L_j is its number of values and W_j the least
  common multiple of L_0..L_j (no shift for the first variable). Every variable's values
  are then spread exactly evenly (counts differ by at most one) and combinations repeat
  only when that cannot be avoided cheaply.

Both rules depend only on (k, N, the variables), so every worker and every redelivery
computes the same values for a slot.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PromptError(ValueError):
    """Root of the errors about prompt templates."""


class PromptSyntaxError(PromptError):
    """Raised when a template has a stray brace or a placeholder that is not an identifier."""


class MissingValue(PromptError):
    """Raised when rendering a placeholder that has no value."""


@functools.lru_cache(maxsize=256)
def _parse(template: str) -> tuple[tuple[bool, str], ...]:
    """The template as (is_placeholder, text) parts: literal text or a placeholder name."""
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(template):
        literal.append(template[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is not None:
            name = match.group(1)
            if not _IDENTIFIER.match(name):
                raise PromptSyntaxError(
                    f"{token!r} at position {match.start()} is not a placeholder: names are identifiers like "
                    "{drug}; write {{ and }} for literal braces"
                )
            parts.append((False, "".join(literal)))
            literal = []
            parts.append((True, name))
        else:
            raise PromptSyntaxError(
                f"unmatched {token!r} at position {match.start()}; write {token * 2} for a literal brace"
            )
    literal.append(template[position:])
    parts.append((False, "".join(literal)))
    return tuple(part for part in parts if part[0] or part[1])


def placeholders(template: str) -> set[str]:
    """The placeholder names of `template`; raises PromptSyntaxError."""
    return {text for is_placeholder, text in _parse(template) if is_placeholder}


def render(template: str, values: Mapping[str, str]) -> str:
    """`template` with each placeholder replaced by its value and `{{`/`}}` un-escaped."""
    out: list[str] = []
    for is_placeholder, text in _parse(template):
        if not is_placeholder:
            out.append(text)
        elif text in values:
            out.append(values[text])
        else:
            raise MissingValue(f"placeholder {{{text}}} has no value")
    return "".join(out)


def slot_variables(variables: Sequence[tuple[str, Sequence[str]]], slot: int, text_count: int) -> dict[str, str]:
    """The value of each variable for `slot` of a job of `text_count` texts (module docstring)."""
    if not variables:
        return {}
    if not 0 <= slot < text_count:
        raise ValueError(f"slot {slot} is outside 0..{text_count - 1}")
    sizes = [len(values) for _, values in variables]
    if min(sizes) < 1:
        raise ValueError("every variable needs at least one value")
    combinations = math.prod(sizes)
    if combinations <= text_count:
        index = slot * combinations // text_count
        digits = [0] * len(sizes)
        for j in range(len(sizes) - 1, -1, -1):
            index, digits[j] = divmod(index, sizes[j])
    else:
        digits = []
        window = 1
        for j, size in enumerate(sizes):
            window = math.lcm(window, size)
            shift = slot // window if j else 0
            digits.append((slot + shift) % size)
    return {name: values[digit] for (name, values), digit in zip(variables, digits, strict=True)}
