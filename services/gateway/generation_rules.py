"""Input rules for CreateGenerationJob, checked before anything is recorded or enqueued.
Every violation names its field; all violations are reported together."""

from __future__ import annotations

import math
import re

from synthtasks.v1 import generation_service_pb2 as pb

from services.generation_queue.prompts import PromptSyntaxError, placeholders
from services.runtime.errors import FieldViolation, InvalidArgument
from services.vocabulary import labels, limits, names
from services.vocabulary.quoting import quoted

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_VARIABLES = 8
MAX_VALUES = 1000
MAX_VALUE_CHARS = 500


def check_generation_job(job: pb.GenerationJob, *, max_text_count: int, max_prompt_chars: int, request_id: str) -> None:
    v: list[FieldViolation] = []
    f = "generation_job."
    if not job.prompt.strip():
        v.append(FieldViolation(f + "prompt", "is required"))
    for field, value in (("prompt", job.prompt), ("system_prompt", job.system_prompt)):
        if len(value) > max_prompt_chars:
            v.append(FieldViolation(f + field, f"must be at most {max_prompt_chars} characters"))
    if math.isnan(job.temperature) or not 0 <= job.temperature <= 2:
        v.append(FieldViolation(f + "temperature", "must be between 0 and 2"))
    if not 1 <= job.text_count <= max_text_count:
        v.append(FieldViolation(f + "text_count", f"must be between 1 and {max_text_count}"))
    if not 0 <= job.max_output_tokens <= limits.MAX_OUTPUT_TOKENS:
        v.append(
            FieldViolation(
                f + "max_output_tokens", f"must be between 0 (provider default) and {limits.MAX_OUTPUT_TOKENS}"
            )
        )
    if len(job.model) > limits.MAX_MODEL_CHARS or any(c.isspace() or not c.isprintable() for c in job.model):
        v.append(
            FieldViolation(f + "model", f"must be at most {limits.MAX_MODEL_CHARS} printable characters without spaces")
        )
    if job.provider and not names.is_provider_name(job.provider):
        v.append(
            FieldViolation(
                f + "provider", "must be a provider name like providers/my-provider, or empty for the default"
            )
        )
    if len(request_id) > limits.MAX_REQUEST_ID_CHARS or not request_id.isprintable():
        v.append(FieldViolation("request_id", f"must be at most {limits.MAX_REQUEST_ID_CHARS} printable characters"))
    v.extend(_variable_violations(job))
    v.extend(
        labels.violations(
            [(label.name, label.description) for label in job.labels],
            job.variable_labels,
            {variable.name for variable in job.variables},
            field="generation_job",
        )
    )
    if v:
        raise InvalidArgument(v)


def _variable_violations(job: pb.GenerationJob) -> list[FieldViolation]:
    v: list[FieldViolation] = []
    f = "generation_job."
    used: dict[str, str] = {}
    for field, template in (("prompt", job.prompt), ("system_prompt", job.system_prompt)):
        try:
            for name in placeholders(template):
                used.setdefault(name, field)
        except PromptSyntaxError as error:
            v.append(FieldViolation(f + field, str(error)))
    if len(job.variables) > MAX_VARIABLES:
        v.append(FieldViolation(f + "variables", f"at most {MAX_VARIABLES} variables"))
    declared: set[str] = set()
    for i, variable in enumerate(job.variables):
        where = f"{f}variables[{i}]"
        if not _VARIABLE_NAME.fullmatch(variable.name):
            v.append(FieldViolation(where + ".name", "must be an identifier like drug or body_part"))
        elif variable.name in declared:
            v.append(FieldViolation(where + ".name", f"{quoted(variable.name)} is declared twice"))
        elif variable.name not in used:
            v.append(FieldViolation(where + ".name", f"{{{variable.name}}} does not appear in the prompt"))
        declared.add(variable.name)
        if not variable.values:
            v.append(FieldViolation(where + ".values", "needs at least one value"))
        elif len(variable.values) > MAX_VALUES:
            v.append(FieldViolation(where + ".values", f"at most {MAX_VALUES} values"))
        for j, value in enumerate(variable.values):
            if not value.strip() or len(value) > MAX_VALUE_CHARS:
                v.append(FieldViolation(f"{where}.values[{j}]", f"must be 1-{MAX_VALUE_CHARS} characters"))
                break
    for name, field in used.items():
        if name not in declared:
            v.append(FieldViolation(f + field, f"placeholder {{{name}}} has no variable with values"))
    return v
