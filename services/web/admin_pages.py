"""Admin pages: LLM providers (create per kind, validate before and after saving,
rotate the key, delete, assign to projects) and API tokens (create, list, revoke).

The gateway decides who is an admin: a project token gets PERMISSION_DENIED from every
call here, shown as a 403 page. API keys only ever travel browser → gateway; pages show
the `key_hint`, and a form re-shown after an error leaves the key field empty."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.web.gateway import GatewayError
from services.web.presentation import label
from services.web.visits import Visit

KINDS = {
    "openai": provider_pb.PROVIDER_KIND_OPENAI,
    "azure": provider_pb.PROVIDER_KIND_AZURE_OPENAI,
    "compatible": provider_pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
}
KIND_TITLES = {"openai": "OpenAI", "azure": "Azure OpenAI", "compatible": "OpenAI-compatible server"}
# Which fields each kind's form shows (the rest do not apply to it).
KIND_FIELDS = {
    "openai": ("model", "organization", "endpoint"),
    "azure": ("endpoint", "deployment", "api_version", "model"),
    "compatible": ("endpoint", "model"),
}
_TEXT_FIELDS = ("display_name", "endpoint", "deployment", "api_version", "model", "organization")
_PROVIDER_PREFIX = "provider."


def _provider_from(form: FormData, kind: str) -> tuple[provider_pb.Provider, dict[str, str]]:
    errors: dict[str, str] = {}
    provider = provider_pb.Provider(kind=KINDS[kind], api_key=str(form.get("api_key", "")).strip())
    for field in _TEXT_FIELDS:
        setattr(provider, field, str(form.get(field, "")).strip())
    for field in ("requests_per_minute", "tokens_per_minute", "max_concurrent_requests"):
        raw = str(form.get(field, "")).strip()
        if raw:
            try:
                setattr(provider.limits, field, int(raw))
            except ValueError:
                errors[f"limits.{field}"] = "must be a whole number"
    return provider, errors


def _field_errors(error: GatewayError) -> dict[str, str]:
    return {field.removeprefix(_PROVIDER_PREFIX): text for field, text in error.field_errors.items()}


def _kind(request: Request) -> str:
    kind = request.query_params.get("kind", "openai")
    return kind if kind in KINDS else "openai"


def _provider_name(request: Request) -> str:
    return f"providers/{request.path_params['provider']}"


async def providers_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    gateway = visit.web.gateway
    page = request.query_params.get("page", "")
    reply = await gateway.call(
        gateway.providers.ListProviders,
        provider_pb.ListProvidersRequest(page_size=visit.web.settings.page_size, page_token=page),
        token,
    )
    project = request.query_params.get("project", "").strip() or (
        visit.session.projects[0] if visit.session.projects else ""
    )
    assignments: list = []
    assignments_error = ""
    if project:
        try:
            assignments = list(
                (
                    await gateway.call(
                        gateway.providers.ListProjectProviders,
                        provider_pb.ListProjectProvidersRequest(project=f"projects/{project}"),
                        token,
                    )
                ).project_providers
            )
        except GatewayError as error:
            if error.code != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            assignments_error = error.describe()
    return visit.render(
        "providers.html",
        {
            "providers": reply.providers,
            "next_page": reply.next_page_token,
            "first_page": not page,
            "assign_project": project,
            "assignments": assignments,
            "assignments_error": assignments_error,
        },
    )


async def provider_page(request: Request) -> Response:
    """One provider: its settings, key hint and last check; validate, rotate, assign, delete."""
    visit = await Visit.open(request)
    token = visit.require_user()
    reply = await visit.web.gateway.call(
        visit.web.gateway.providers.GetProvider, provider_pb.GetProviderRequest(name=_provider_name(request)), token
    )
    return visit.render("provider.html", {"provider": reply.provider})


def _form_context(kind: str, values: dict, errors: dict, message: str = "") -> dict:
    return {
        "kind": kind,
        "kinds": KIND_TITLES,
        "fields": KIND_FIELDS[kind],
        "values": values,
        "errors": errors,
        "message": message,
    }


async def new_provider_page(request: Request) -> Response:
    visit = await Visit.open(request)
    visit.require_user()
    if not visit.session.admin:
        # The gateway would refuse the form's calls; say so before the user types a key.
        return visit.render("denied.html", {"message": "Managing providers needs an admin token."}, status_code=403)
    return visit.render("provider_new.html", _form_context(_kind(request), {}, {}))


async def create_provider(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    kind = _kind(request)
    provider, errors = _provider_from(form, kind)
    values = {field: str(form.get(field, "")) for field in form if field not in ("api_key", "csrf_token")}
    message = ""
    if not errors:
        try:
            reply = await visit.web.gateway.call(
                visit.web.gateway.providers.CreateProvider,
                provider_pb.CreateProviderRequest(
                    provider=provider,
                    provider_id=str(form.get("provider_id", "")).strip(),
                    validate_first=form.get("validate_first") == "on",
                ),
                token,
                slow=True,
            )
        except GatewayError as error:
            if error.code not in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.ALREADY_EXISTS,
            ):
                raise
            errors = _field_errors(error)
            message = error.describe()
        else:
            name = reply.provider.name
            return visit.redirect(f"/admin/{name}", notice=f"Saved {name} (key {reply.provider.key_hint}).")
    return visit.render("provider_new.html", _form_context(kind, values, errors, message), status_code=400)


async def test_connection(request: Request) -> Response:
    """The form's Validate button: checks the unsaved credentials, answers JSON."""
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    provider, errors = _provider_from(form, _kind(request))
    if errors:
        return JSONResponse({"errors": errors}, status_code=400)
    try:
        reply = await visit.web.gateway.call(
            visit.web.gateway.providers.TestProviderConnection,
            provider_pb.TestProviderConnectionRequest(provider=provider),
            token,
            slow=True,
        )
    except GatewayError as error:
        status = 403 if error.code == grpc.StatusCode.PERMISSION_DENIED else 400
        return JSONResponse({"message": error.describe(), "errors": _field_errors(error)}, status_code=status)
    result = reply.result
    return JSONResponse(
        {
            "state": label(result.state, "validation"),
            "valid": result.state == provider_pb.VALIDATION_STATE_VALID,
            "message": result.message,
            "latency_ms": round(result.latency.ToMilliseconds()),
        }
    )


async def validate_provider(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    await visit.form()
    name = _provider_name(request)
    reply = await visit.web.gateway.call(
        visit.web.gateway.providers.ValidateProvider, provider_pb.ValidateProviderRequest(name=name), token, slow=True
    )
    state = label(reply.result.state, "validation")
    detail = f": {reply.result.message}" if reply.result.message else ""
    return visit.redirect(f"/admin/{name}", notice=f"{name} checked: {state}{detail}")


async def rotate_key(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    name = _provider_name(request)
    api_key = str(form.get("api_key", "")).strip()
    if not api_key:
        return visit.redirect(f"/admin/{name}", notice="Type the new key first.")
    try:
        reply = await visit.web.gateway.call(
            visit.web.gateway.providers.UpdateProvider,
            provider_pb.UpdateProviderRequest(
                provider=provider_pb.Provider(name=name, api_key=api_key), update_mask=FieldMask(paths=["api_key"])
            ),
            token,
        )
    except GatewayError as error:
        if error.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return visit.redirect(f"/admin/{name}", notice=f"Key not changed: {error.describe()}")
    return visit.redirect(f"/admin/{name}", notice=f"New key for {name} saved ({reply.provider.key_hint}).")


async def delete_provider(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    name = _provider_name(request)
    try:
        await visit.web.gateway.call(
            visit.web.gateway.providers.DeleteProvider,
            provider_pb.DeleteProviderRequest(name=name, force=form.get("force") == "on"),
            token,
        )
    except GatewayError as error:
        if error.code != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return visit.redirect(f"/admin/{name}", notice=f"Not deleted: {error.describe()}")
    return visit.redirect("/admin/providers", notice=f"Deleted {name}.")


async def assign_provider(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    project = str(form.get("project", "")).strip()
    provider = str(form.get("provider", "")).strip()
    try:
        await visit.web.gateway.call(
            visit.web.gateway.providers.AssignProvider,
            provider_pb.AssignProviderRequest(
                project=f"projects/{project}", provider=provider, default=form.get("default") == "on"
            ),
            token,
        )
    except GatewayError as error:
        if error.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
            raise
        return visit.redirect("/admin/providers", notice=f"Not assigned: {error.describe()}", project=project)
    return visit.redirect("/admin/providers", notice=f"{provider} assigned to projects/{project}.", project=project)


async def unassign_provider(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    project = str(form.get("project", "")).strip()
    provider = str(form.get("provider", "")).strip()
    await visit.web.gateway.call(
        visit.web.gateway.providers.UnassignProvider,
        provider_pb.UnassignProviderRequest(project=f"projects/{project}", provider=provider),
        token,
    )
    return visit.redirect(
        "/admin/providers", notice=f"{provider} no longer assigned to projects/{project}.", project=project
    )


async def _tokens_context(visit: Visit, token: str, request: Request) -> dict:
    page = request.query_params.get("page", "")
    reply = await visit.web.gateway.call(
        visit.web.gateway.tokens.ListTokens,
        token_pb.ListTokensRequest(page_size=visit.web.settings.page_size, page_token=page),
        token,
    )
    return {"tokens": reply.tokens, "next_page": reply.next_page_token, "first_page": not page}


async def tokens_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    context = await _tokens_context(visit, token, request)
    return visit.render("tokens.html", {**context, "errors": {}, "values": {}, "created": None})


async def create_token(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    role = token_pb.TOKEN_ROLE_ADMIN if form.get("role") == "admin" else token_pb.TOKEN_ROLE_PROJECT
    projects = [f"projects/{p.strip()}" for p in str(form.get("projects", "")).split(",") if p.strip()]
    values = {"display_name": str(form.get("display_name", "")), "projects": str(form.get("projects", ""))}
    created = None
    errors: dict[str, str] = {}
    message = ""
    try:
        created = await visit.web.gateway.call(
            visit.web.gateway.tokens.CreateToken,
            token_pb.CreateTokenRequest(
                token=token_pb.ApiToken(display_name=values["display_name"].strip(), role=role, projects=projects)
            ),
            token,
        )
    except GatewayError as error:
        if error.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        errors = {field.removeprefix("token."): text for field, text in error.field_errors.items()}
        message = error.describe()
    context = await _tokens_context(visit, token, request)
    # The secret is on this one page only: the gateway keeps its hash, and the page is no-store.
    return visit.render(
        "tokens.html",
        {**context, "errors": errors, "values": {} if created else values, "created": created, "message": message},
        status_code=200 if created else 400,
    )


async def revoke_token(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    await visit.form()
    name = f"tokens/{request.path_params['token']}"
    await visit.web.gateway.call(visit.web.gateway.tokens.DeleteToken, token_pb.DeleteTokenRequest(name=name), token)
    return visit.redirect("/admin/tokens", notice=f"Revoked {name}.")
