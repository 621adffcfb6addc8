"""`synthtasks providers create|list|get|update|delete|validate|test` (admin).

API keys: prefer `--api-key-env VAR` or `--api-key -` (read from stdin, or prompted
without echo on a terminal) so the key does not land in shell history. The CLI never
prints a key; the gateway only ever returns its hint (`sk-…9f2c`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any, TextIO

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from rich.console import Console
from synthtasks.v1 import provider_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf, non_negative_float, non_negative_int
from synthtasks_cli.context import Context
from synthtasks_cli.errors import UsageError
from synthtasks_cli.output import details, enum_label, seconds, table, when

KINDS = {
    "openai": pb.PROVIDER_KIND_OPENAI,
    "azure": pb.PROVIDER_KIND_AZURE_OPENAI,
    "compatible": pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
}

# flag dest -> field mask path. Limits are masked per field, so `--rpm 60` leaves the
# token limit alone.
MASK_PATHS: dict[str, str] = {
    "display_name": "display_name",
    "endpoint": "endpoint",
    "deployment": "deployment",
    "api_version": "api_version",
    "model": "model",
    "organization": "organization",
    "rpm": "limits.requests_per_minute",
    "tpm": "limits.tokens_per_minute",
    "max_concurrent": "limits.max_concurrent_requests",
    "max_choices": "max_choices_per_request",
    "timeout_seconds": "request_timeout",
    "structured_output": "structured_output",
}
# --structured-output values.
STRUCTURED_OUTPUT_MODES = {
    "json_schema": pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA,
    "json_object": pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT,
}


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "providers", common, help="manage LLM provider credentials (admin)")

    create = leaf(actions, "create", common, help="add a provider")
    _add_provider_flags(create, with_kind=True, display_name_required=True)
    create.add_argument("--id", dest="provider_id", help="provider id (default: derived from the display name)")
    create.add_argument(
        "--validate-first", action="store_true", help="refuse to save a credential that fails validation"
    )
    create.set_defaults(run=create_provider)

    listing = leaf(actions, "list", common, help="list providers")
    listing.set_defaults(run=list_providers)

    get = leaf(actions, "get", common, help="show one provider")
    get.add_argument("name", help="provider id or providers/ID")
    get.set_defaults(run=get_provider)

    update = leaf(actions, "update", common, help="change the given fields (a new key rotates it)")
    update.add_argument("name", help="provider id or providers/ID")
    _add_provider_flags(update, with_kind=False, display_name_required=False)
    update.add_argument("--etag", default="", help="only update if the provider still has this etag")
    update.set_defaults(run=update_provider)

    delete = leaf(actions, "delete", common, help="delete a provider")
    delete.add_argument("name", help="provider id or providers/ID")
    delete.add_argument("--force", action="store_true", help="delete even while assigned to projects")
    delete.set_defaults(run=delete_provider)

    validate = leaf(actions, "validate", common, help="live check of a saved provider (exit 1 unless VALID)")
    validate.add_argument("name", help="provider id or providers/ID")
    validate.set_defaults(run=validate_provider)

    test = leaf(actions, "test", common, help="live check of unsaved credentials (exit 1 unless VALID)")
    _add_provider_flags(test, with_kind=True, display_name_required=False)
    test.set_defaults(run=test_connection)


def _add_provider_flags(parser: argparse.ArgumentParser, *, with_kind: bool, display_name_required: bool) -> None:
    if with_kind:
        parser.add_argument("--kind", required=True, choices=sorted(KINDS), help="provider kind")
    parser.add_argument("--display-name", required=display_name_required, help="unique human name")
    parser.add_argument(
        "--endpoint", help="base URL (OpenAI-compatible, e.g. http://127.0.0.1:8080/v1) or Azure resource URL"
    )
    parser.add_argument("--deployment", help="Azure OpenAI deployment name")
    parser.add_argument("--api-version", help="Azure OpenAI api-version, e.g. 2024-06-01")
    parser.add_argument("--model", help="default model for generation jobs")
    parser.add_argument("--organization", help="OpenAI organization id")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", metavar="KEY", help="the API key; '-' reads it from stdin (prompted, not echoed)")
    key.add_argument("--api-key-env", metavar="VAR", help="read the API key from this environment variable")
    parser.add_argument("--rpm", type=non_negative_int, help="requests per minute, shared by all workers (0: no limit)")
    parser.add_argument("--tpm", type=non_negative_int, help="tokens per minute (0: no limit)")
    parser.add_argument("--max-concurrent", type=non_negative_int, help="concurrent requests at most (0: no limit)")
    parser.add_argument(
        "--max-choices", type=non_negative_int, help="choices (n) per request; 1 for servers that ignore n"
    )
    parser.add_argument("--timeout-seconds", type=non_negative_float, help="per-request timeout of generation calls")
    parser.add_argument(
        "--structured-output",
        choices=sorted(STRUCTURED_OUTPUT_MODES),
        help="how pre-annotation asks for JSON (default: json_schema, json_object for openai-compatible)",
    )


def read_api_key(args: argparse.Namespace, *, prompt_if_missing: bool, stdin: TextIO | None = None) -> str | None:
    """The key from --api-key-env, --api-key (or '-': stdin / hidden prompt), else None."""
    source = stdin or sys.stdin
    if getattr(args, "api_key_env", None):
        value = os.environ.get(args.api_key_env, "").strip()
        if not value:
            raise UsageError(f"environment variable {args.api_key_env} is not set or empty")
        return value
    given = getattr(args, "api_key", None)
    if given == "-" or (given is None and prompt_if_missing and source.isatty()):
        value = (getpass.getpass("API key (not shown): ") if source.isatty() else source.readline()).strip()
        if not value:
            raise UsageError("no API key was given on stdin")
        return value
    return given


def _duration(value: float) -> Duration:
    duration = Duration()
    duration.FromMilliseconds(round(value * 1000))
    return duration


def provider_from_args(args: argparse.Namespace, *, api_key: str | None) -> pb.Provider:
    """The Provider of `create`/`test` from their flags; unset flags stay empty."""
    provider = pb.Provider(kind=KINDS[args.kind])
    for dest in ("display_name", "endpoint", "deployment", "api_version", "model", "organization"):
        value = getattr(args, dest, None)
        if value is not None:
            setattr(provider, dest, value)
    if api_key:
        provider.api_key = api_key
    if args.rpm is not None:
        provider.limits.requests_per_minute = args.rpm
    if args.tpm is not None:
        provider.limits.tokens_per_minute = args.tpm
    if args.max_concurrent is not None:
        provider.limits.max_concurrent_requests = args.max_concurrent
    if args.max_choices is not None:
        provider.max_choices_per_request = args.max_choices
    if args.timeout_seconds is not None:
        provider.request_timeout.CopyFrom(_duration(args.timeout_seconds))
    if args.structured_output is not None:
        provider.structured_output = STRUCTURED_OUTPUT_MODES[args.structured_output]
    return provider


def update_from_args(args: argparse.Namespace, *, api_key: str | None) -> tuple[pb.Provider, FieldMask]:
    """The provider and field mask of `update`: exactly the flags given, nothing else."""
    provider = pb.Provider(name=names.provider(args.name), etag=args.etag or "")
    paths: list[str] = []
    for dest, path in MASK_PATHS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        paths.append(path)
        if dest == "timeout_seconds":
            provider.request_timeout.CopyFrom(_duration(value))
        elif dest == "structured_output":
            provider.structured_output = STRUCTURED_OUTPUT_MODES[value]
        elif path.startswith("limits."):
            setattr(provider.limits, path.removeprefix("limits."), value)
        else:
            setattr(provider, path, value)
    if api_key:
        provider.api_key = api_key
        paths.append("api_key")
    if not paths:
        raise UsageError(
            "nothing to update: give at least one of "
            + ", ".join("--" + dest.replace("_", "-") for dest in MASK_PATHS)
            + ", --api-key, --api-key-env"
        )
    return provider, FieldMask(paths=paths)


# --- rendering -----------------------------------------------------------------------


def kind_label(kind: int) -> str:
    return enum_label(kind, pb.ProviderKind, "PROVIDER_KIND_")


def validation_label(result: pb.ValidationResult) -> str:
    return enum_label(result.state, pb.ValidationState, "VALIDATION_STATE_")


def _limit(value: int) -> str:
    return str(value) if value else "no limit"


def provider_details(provider: pb.Provider) -> Any:
    last = provider.last_validation
    return details(
        [
            ("name", provider.name),
            ("display name", provider.display_name),
            ("kind", kind_label(provider.kind)),
            ("endpoint", provider.endpoint),
            ("deployment", provider.deployment),
            ("api version", provider.api_version),
            ("model", provider.model),
            ("organization", provider.organization),
            ("key", provider.key_hint or "(none)"),
            ("requests/minute", _limit(provider.limits.requests_per_minute)),
            ("tokens/minute", _limit(provider.limits.tokens_per_minute)),
            ("max concurrent", _limit(provider.limits.max_concurrent_requests)),
            ("choices/request", provider.max_choices_per_request or ""),
            ("request timeout", seconds(provider.request_timeout)),
            (
                "structured output",
                enum_label(provider.structured_output, pb.StructuredOutputMode, "STRUCTURED_OUTPUT_MODE_"),
            ),
            ("last validation", _validation_summary(last) if last.state else "never validated"),
            ("created", when(provider.create_time)),
            ("updated", when(provider.update_time)),
            ("etag", provider.etag),
        ]
    )


def _validation_summary(result: pb.ValidationResult) -> str:
    parts = [validation_label(result)]
    if result.message:
        parts.append(result.message)
    extra = ", ".join(x for x in (seconds(result.latency), when(result.validate_time)) if x)
    return " — ".join(parts) + (f" ({extra})" if extra else "")


def render_validation(console: Console, result: pb.ValidationResult, *, subject: str) -> None:
    style = "green" if result.state == pb.VALIDATION_STATE_VALID else "red"
    console.print(f"{subject}: [{style}]{validation_label(result)}[/{style}]", highlight=False)
    if result.message:
        console.print(f"  {result.message}", markup=False)
    if result.latency.seconds or result.latency.nanos:
        console.print(f"  latency {seconds(result.latency)}", markup=False)


def provider_rows(providers: list[pb.Provider]) -> Any:
    return table(
        ["NAME", "DISPLAY NAME", "KIND", "MODEL / DEPLOYMENT", "ENDPOINT", "KEY", "VALIDATION"],
        [
            (
                names.short(p.name),
                p.display_name,
                kind_label(p.kind),
                p.deployment or p.model,
                p.endpoint,
                p.key_hint,
                (
                    validation_label(p.last_validation)
                    + (f" {when(p.last_validation.validate_time)}" if p.last_validation.state else "")
                )
                if p.last_validation.state
                else "never",
            )
            for p in providers
        ],
    )


# --- handlers ------------------------------------------------------------------------


def create_provider(ctx: Context, args: argparse.Namespace) -> int:
    needs_key = args.kind in ("openai", "azure")
    provider = provider_from_args(args, api_key=read_api_key(args, prompt_if_missing=needs_key))
    request = pb.CreateProviderRequest(
        provider=provider, provider_id=args.provider_id or "", validate_first=args.validate_first
    )
    reply = ctx.client.call(ctx.client.providers.CreateProvider, request, slow=args.validate_first)

    def render(console: Console) -> None:
        console.print(f"Created {reply.provider.name}", markup=False)
        console.print(provider_details(reply.provider))
        if reply.HasField("validation"):
            render_validation(console, reply.validation, subject="validation")

    ctx.out.result(reply, render)
    return 0


def list_providers(ctx: Context, args: argparse.Namespace) -> int:
    found = list(
        ctx.client.pages(ctx.client.providers.ListProviders, pb.ListProvidersRequest(page_size=200), "providers")
    )
    ctx.out.result(
        pb.ListProvidersResponse(providers=found),
        lambda console: console.print(
            provider_rows(found) if found else "No providers yet: add one with `synthtasks providers create`."
        ),
    )
    return 0


def get_provider(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(ctx.client.providers.GetProvider, pb.GetProviderRequest(name=names.provider(args.name)))
    ctx.out.result(reply, lambda console: console.print(provider_details(reply.provider)))
    return 0


def update_provider(ctx: Context, args: argparse.Namespace) -> int:
    provider, mask = update_from_args(args, api_key=read_api_key(args, prompt_if_missing=False))
    reply = ctx.client.call(
        ctx.client.providers.UpdateProvider, pb.UpdateProviderRequest(provider=provider, update_mask=mask)
    )

    def render(console: Console) -> None:
        console.print(f"Updated {reply.provider.name} ({', '.join(mask.paths)})", markup=False)
        console.print(provider_details(reply.provider))

    ctx.out.result(reply, render)
    return 0


def delete_provider(ctx: Context, args: argparse.Namespace) -> int:
    name = names.provider(args.name)
    reply = ctx.client.call(ctx.client.providers.DeleteProvider, pb.DeleteProviderRequest(name=name, force=args.force))
    ctx.out.result(reply, lambda console: console.print(f"Deleted {name}", markup=False))
    return 0


def validate_provider(ctx: Context, args: argparse.Namespace) -> int:
    name = names.provider(args.name)
    reply = ctx.client.call(ctx.client.providers.ValidateProvider, pb.ValidateProviderRequest(name=name), slow=True)
    ctx.out.result(reply, lambda console: render_validation(console, reply.result, subject=name))
    return 0 if reply.result.state == pb.VALIDATION_STATE_VALID else 1


def test_connection(ctx: Context, args: argparse.Namespace) -> int:
    needs_key = args.kind in ("openai", "azure")
    provider = provider_from_args(args, api_key=read_api_key(args, prompt_if_missing=needs_key))
    reply = ctx.client.call(
        ctx.client.providers.TestProviderConnection, pb.TestProviderConnectionRequest(provider=provider), slow=True
    )
    ctx.out.result(reply, lambda console: render_validation(console, reply.result, subject="connection"))
    return 0 if reply.result.state == pb.VALIDATION_STATE_VALID else 1
