"""Input rules for providers: every violation names its field, and nothing is written
when any rule fails."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlparse

from synthtasks.v1 import provider_service_pb2 as pb

from services.provider_registry.records import ProviderRecord
from services.runtime.errors import FieldViolation, InvalidArgument

# Applied with fullmatch: `$` would let a final newline through.
_DEPLOYMENT = re.compile(r"[A-Za-z0-9._-]{1,64}")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?", re.ASCII)
_MODEL = re.compile(r"[\w.:/@+-]{1,128}")

MAX_DISPLAY_NAME = 100
MAX_KEY_LENGTH = 512
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_TOKENS_PER_MINUTE = 1_000_000_000
MAX_CONCURRENT = 10_000
MAX_CHOICES = 128
MAX_TIMEOUT_MS = 600_000
MAX_ALLOWED_MODELS = 32
KINDS = (pb.PROVIDER_KIND_OPENAI, pb.PROVIDER_KIND_AZURE_OPENAI, pb.PROVIDER_KIND_OPENAI_COMPATIBLE)

# Servers that ignore `n` (llama.cpp) must say so; hosted APIs honour it.
DEFAULT_MAX_CHOICES: dict[int, int] = {
    pb.PROVIDER_KIND_OPENAI: 8,
    pb.PROVIDER_KIND_AZURE_OPENAI: 8,
    pb.PROVIDER_KIND_OPENAI_COMPATIBLE: 1,
}
# OpenAI and Azure constrain replies to a strict JSON schema. OpenAI-compatible servers
# differ (llama.cpp and Ollama before 0.5 ignore or refuse `json_schema`; a server that
# ignores it answers prose and every text would fail), while JSON mode is what nearly all
# of them honour, and the worker validates and repairs the reply anyway. An admin whose
# server supports schemas (vLLM, recent llama.cpp and Ollama) can switch.
DEFAULT_STRUCTURED_OUTPUT: dict[int, int] = {
    pb.PROVIDER_KIND_OPENAI: pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA,
    pb.PROVIDER_KIND_AZURE_OPENAI: pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA,
    pb.PROVIDER_KIND_OPENAI_COMPATIBLE: pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT,
}
STRUCTURED_OUTPUT_MODES = (pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA, pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT)


def default_structured_output(record: ProviderRecord) -> None:
    """A provider given without a structured-output mode gets its kind's (create, test)."""
    if not record.structured_output:
        record.structured_output = DEFAULT_STRUCTURED_OUTPUT.get(record.kind, 0)


def has_control_characters(text: str) -> bool:
    """NUL among them: Postgres cannot store it in text."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _check_url(value: str, field: str, violations: list[FieldViolation]) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        violations.append(FieldViolation(field, "must be an http(s) URL with a host"))
    elif has_control_characters(value) or " " in value:
        violations.append(FieldViolation(field, "must not contain spaces or control characters"))
    elif "@" in parsed.netloc:
        # Endpoints are shown to project members; a credential belongs in api_key.
        violations.append(
            FieldViolation(field, "must not contain credentials (user:password@host); put the key in api_key")
        )


def check_provider(record: ProviderRecord, *, prefix: str = "provider", key_required: bool = True) -> None:
    """Raise InvalidArgument listing every rule the provider breaks."""
    v: list[FieldViolation] = []
    name = record.display_name.strip()
    if not name:
        v.append(FieldViolation(f"{prefix}.display_name", "is required"))
    elif len(name) > MAX_DISPLAY_NAME:
        v.append(FieldViolation(f"{prefix}.display_name", f"must be at most {MAX_DISPLAY_NAME} characters"))
    elif has_control_characters(name):
        v.append(FieldViolation(f"{prefix}.display_name", "must not contain control characters"))
    if record.kind not in KINDS:
        v.append(FieldViolation(f"{prefix}.kind", "must be OPENAI, AZURE_OPENAI or OPENAI_COMPATIBLE"))
        raise InvalidArgument(v)

    if record.kind == pb.PROVIDER_KIND_AZURE_OPENAI:
        if not record.endpoint:
            v.append(FieldViolation(f"{prefix}.endpoint", "is required for Azure OpenAI (the resource URL)"))
        if not _DEPLOYMENT.fullmatch(record.deployment):
            v.append(
                FieldViolation(
                    f"{prefix}.deployment", "is required for Azure OpenAI: 1-64 letters, digits, '.', '_' or '-'"
                )
            )
        if not _API_VERSION.fullmatch(record.api_version):
            v.append(FieldViolation(f"{prefix}.api_version", "is required for Azure OpenAI, like 2024-06-01"))
    else:
        if record.deployment:
            v.append(FieldViolation(f"{prefix}.deployment", "applies only to Azure OpenAI"))
        if record.api_version:
            v.append(FieldViolation(f"{prefix}.api_version", "applies only to Azure OpenAI"))
        if not record.model:
            v.append(FieldViolation(f"{prefix}.model", "is required: the default model for generation"))
    if record.kind == pb.PROVIDER_KIND_OPENAI_COMPATIBLE and not record.endpoint:
        v.append(FieldViolation(f"{prefix}.endpoint", "is required for an OpenAI-compatible server (its base URL)"))
    if record.endpoint:
        _check_url(record.endpoint, f"{prefix}.endpoint", v)
    if record.model and not _MODEL.fullmatch(record.model):
        v.append(FieldViolation(f"{prefix}.model", "must be 1-128 characters without spaces"))
    if len(record.allowed_models) > MAX_ALLOWED_MODELS:
        v.append(FieldViolation(f"{prefix}.allowed_models", f"at most {MAX_ALLOWED_MODELS} models"))
    for index, model in enumerate(record.allowed_models):
        if not _MODEL.fullmatch(model):
            v.append(FieldViolation(f"{prefix}.allowed_models[{index}]", "must be 1-128 characters without spaces"))
    if record.organization and (len(record.organization) > 128 or has_control_characters(record.organization)):
        v.append(FieldViolation(f"{prefix}.organization", "must be at most 128 printable characters"))

    if key_required and record.kind != pb.PROVIDER_KIND_OPENAI_COMPATIBLE and not record.api_key:
        v.append(FieldViolation(f"{prefix}.api_key", "is required for this provider kind"))
    if record.api_key and (
        len(record.api_key) > MAX_KEY_LENGTH
        or any(c.isspace() for c in record.api_key)
        or has_control_characters(record.api_key)
    ):
        v.append(
            FieldViolation(
                f"{prefix}.api_key", f"must be at most {MAX_KEY_LENGTH} characters without spaces or control characters"
            )
        )

    for field, value, maximum in (
        ("requests_per_minute", record.limits.requests_per_minute, MAX_REQUESTS_PER_MINUTE),
        ("tokens_per_minute", record.limits.tokens_per_minute, MAX_TOKENS_PER_MINUTE),
        ("max_concurrent_requests", record.limits.max_concurrent_requests, MAX_CONCURRENT),
    ):
        if not 0 <= value <= maximum:
            v.append(FieldViolation(f"{prefix}.limits.{field}", f"must be between 0 (no limit) and {maximum}"))
    if not 1 <= record.max_choices_per_request <= MAX_CHOICES:
        v.append(FieldViolation(f"{prefix}.max_choices_per_request", f"must be between 1 and {MAX_CHOICES}"))
    if record.structured_output not in STRUCTURED_OUTPUT_MODES:
        v.append(FieldViolation(f"{prefix}.structured_output", "must be JSON_SCHEMA or JSON_OBJECT"))
    if not 0 <= record.request_timeout_ms <= MAX_TIMEOUT_MS:
        v.append(FieldViolation(f"{prefix}.request_timeout", "must be between 0 (default) and 600 seconds"))
    if v:
        raise InvalidArgument(v)


def endpoint_for_members(endpoint: str) -> str:
    """Scheme, host, port and path only: what a member needs to know where texts go.
    Userinfo, query and fragment can carry credentials (`?api-key=`), so they go."""
    parsed = urlparse(endpoint)
    if not parsed.hostname:
        return ""
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    netloc = f"{host}:{parsed.port}" if parsed.port else host
    return parsed._replace(netloc=netloc, query="", fragment="", params="").geturl()


def endpoint_without_userinfo(endpoint: str) -> str:
    """The endpoint as stored, minus any `user:password@` (rows saved before it was refused)."""
    parsed = urlparse(endpoint)
    if "@" not in parsed.netloc:
        return endpoint
    return parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()


def slug(display_name: str) -> str:
    """A provider id derived from a display name ("Azure EU (prod)" -> "azure-eu-prod")."""
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    candidate = words[:50].rstrip("-") or "provider"
    return candidate if candidate[0].isalpha() else f"p-{candidate}"[:50]
