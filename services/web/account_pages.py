"""Sign-in, sign-out and choosing the project to work in.

The gateway has no "who am I" call, so sign-in asks it: a token that may list API
tokens is an admin token; a project token must name a project it may act in, checked
with ListProjectProviders (members may call it). The session keeps the projects opened."""

from __future__ import annotations

import time

import grpc
from starlette.requests import Request
from starlette.responses import Response
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.web.gateway import GatewayError
from services.web.session import Session
from services.web.visits import Visit


async def home(request: Request) -> Response:
    visit = await Visit.open(request)
    visit.require_user()
    if visit.session.projects:
        return visit.redirect(f"/p/{visit.session.projects[0]}/texts")
    return visit.redirect("/projects")


async def sign_in_page(request: Request) -> Response:
    visit = await Visit.open(request)
    if visit.session.signed_in:
        return visit.redirect("/")
    # The anonymous session carries the CSRF token of the sign-in form.
    visit.dirty = True
    return visit.render("sign_in.html", {"errors": {}, "values": {}})


async def _is_admin(visit: Visit, token: str) -> bool:
    try:
        await visit.web.gateway.call(
            visit.web.gateway.tokens.ListTokens, token_pb.ListTokensRequest(page_size=1), token
        )
    except GatewayError as error:
        if error.code == grpc.StatusCode.PERMISSION_DENIED:
            return False
        raise
    return True


async def check_project(visit: Visit, token: str, project: str) -> None:
    """Raises GatewayError (PERMISSION_DENIED, INVALID_ARGUMENT) unless the token may act in it."""
    await visit.web.gateway.call(
        visit.web.gateway.providers.ListProjectProviders,
        provider_pb.ListProjectProvidersRequest(project=f"projects/{project}"),
        token,
    )


async def sign_in(request: Request) -> Response:
    visit = await Visit.open(request)
    form = await visit.form()
    token = str(form.get("token", "")).strip()
    project = str(form.get("project", "")).strip()
    values = {"project": project}
    errors: dict[str, str] = {}
    if not token:
        errors["token"] = "Paste your API token."
    else:
        try:
            admin = await _is_admin(visit, token)
            if project:
                await check_project(visit, token, project)
            elif not admin:
                errors["project"] = "A project token needs the project it acts in."
        except GatewayError as error:
            if error.code == grpc.StatusCode.UNAUTHENTICATED:
                errors["token"] = "This token is not accepted (unknown or revoked)."
            elif error.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT):
                errors["project"] = error.describe()
            else:
                raise
    if errors:
        return visit.render("sign_in.html", {"errors": errors, "values": values}, status_code=400)
    # A new session (new CSRF secret and id) at sign-in, so nothing from before carries over.
    visit.session = Session(token=token, admin=admin, signed_in_at=time.time())
    if project:
        visit.session.remember_project(project)
    visit.dirty = True
    return visit.redirect(f"/p/{project}/texts" if project else "/admin/providers")


async def sign_out(request: Request) -> Response:
    visit = await Visit.open(request)
    await visit.form()
    visit.session = Session(notice="You are signed out.")
    visit.dirty = True
    return visit.redirect("/sign-in")


async def projects_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    suggestions: list[str] = []
    if visit.session.admin:
        # Projects named by project tokens: the projects an admin most likely means.
        reply = await visit.web.gateway.call(
            visit.web.gateway.tokens.ListTokens, token_pb.ListTokensRequest(page_size=100), token
        )
        found = {p.removeprefix("projects/") for t in reply.tokens for p in t.projects}
        suggestions = sorted(found - set(visit.session.projects))
    return visit.render("projects.html", {"suggestions": suggestions, "errors": {}, "values": {}})


async def open_project(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    project = str(form.get("project", "")).strip()
    try:
        await check_project(visit, token, project)
    except GatewayError as error:
        if error.code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT):
            raise
        return visit.render(
            "projects.html",
            {"suggestions": [], "errors": {"project": error.describe()}, "values": {"project": project}},
            status_code=400,
        )
    visit.session.remember_project(project)
    visit.dirty = True
    return visit.redirect(f"/p/{project}/texts")
