"""Entity labels of a job (pre-annotation): the rules the gateway checks to answer
early and the task store checks again because it writes. One function returns every
violation, so the two cannot disagree; each names its request field.

    labels           at most MAX_LABELS, names `^[A-Z][A-Z0-9_]{0,31}$`, unique,
                     descriptions at most MAX_DESCRIPTION_CHARS printable characters
    variable_labels  prompt variable name -> label name; every key a declared
                     variable, every value one of the labels
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from services.runtime.errors import FieldViolation
from services.vocabulary.quoting import quoted

LABEL_NAME = r"[A-Z][A-Z0-9_]{0,31}"
MAX_LABELS = 32
MAX_DESCRIPTION_CHARS = 200

_LABEL_NAME = re.compile(LABEL_NAME)


def is_label_name(value: str) -> bool:
    return _LABEL_NAME.fullmatch(value) is not None


def violations(
    labels: Iterable[tuple[str, str]],
    variable_labels: Mapping[str, str],
    variables: Collection[str],
    *,
    field: str,
) -> list[FieldViolation]:
    """`labels` as (name, description) pairs, `variables` the job's declared variable
    names, `field` the job's request field (`generation_job`)."""
    found: list[FieldViolation] = []
    names: set[str] = set()
    pairs = list(labels)
    if len(pairs) > MAX_LABELS:
        found.append(FieldViolation(f"{field}.labels", f"must hold at most {MAX_LABELS} labels"))
    for index, (name, description) in enumerate(pairs):
        where = f"{field}.labels[{index}]"
        if not is_label_name(name):
            found.append(
                FieldViolation(f"{where}.name", f"must match {LABEL_NAME}: upper-case letters, digits, _ (e.g. DRUG)")
            )
        elif name in names:
            found.append(FieldViolation(f"{where}.name", f"repeats the label {quoted(name)}"))
        names.add(name)
        if len(description) > MAX_DESCRIPTION_CHARS:
            found.append(FieldViolation(f"{where}.description", f"must be at most {MAX_DESCRIPTION_CHARS} characters"))
        elif not description.isprintable():
            found.append(FieldViolation(f"{where}.description", "must not contain control characters"))
    for variable, label in variable_labels.items():
        where = f"{field}.variable_labels[{_key(variable)}]"
        if variable not in variables:
            found.append(FieldViolation(where, "is not a variable of the job"))
        elif label not in names:
            found.append(FieldViolation(where, f"{quoted(label)} is not one of the job's labels"))
    return found


def _key(value: str) -> str:
    """A map key in a field path, quoted as AIP-161 does (`variable_labels["drug"]`);
    cut short like any echoed value, since the key is the caller's."""
    shown = value if len(value) <= 64 else value[:64] + "…"
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
