"""Sign-in, sign-out and choosing the project to work in.

Sign-in asks the gateway who the token is (GetCallerIdentity): its role, and the
projects it may act in. A project token then picks one of its projects from a list
(its only one preselected); an admin may act in any project, so it types one or picks
from the projects the registry knows of. The session keeps the projects opened; the
token's own list is asked for again on each page that offers it, so the cookie stays
small whatever the number of projects (services/web/project_choices.py)."""

from __future__ import annotations

import time

import grpc
from starlette.requests import Request
from starlette.responses import Response
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.web.gateway import GatewayError
from services.web.project_choices import caller_identity, project_choices
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
    return visit.render("sign_in.html", {"errors": {}})


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
    if not token:
        return visit.render("sign_in.html", {"errors": {"token": "Paste your API token."}}, status_code=400)
    try:
        me = await caller_identity(visit, token)
    except GatewayError as error:
        if error.code != grpc.StatusCode.UNAUTHENTICATED:
            raise
        errors = {"token": "This token is not accepted (unknown or revoked)."}
        return visit.render("sign_in.html", {"errors": errors}, status_code=400)
    # A new session (new CSRF secret and id) at sign-in, so nothing from before carries over.
    visit.session = Session(token=token, admin=me.role == token_pb.TOKEN_ROLE_ADMIN, signed_in_at=time.time())
    visit.dirty = True
    # Next, the project to work in: chosen from the token's own projects.
    return visit.redirect("/projects")


async def sign_out(request: Request) -> Response:
    visit = await Visit.open(request)
    await visit.form()
    visit.session = Session(notice="You are signed out.")
    visit.dirty = True
    return visit.redirect("/sign-in")


async def projects_page(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    choices = await project_choices(visit, token)
    page = {"choices": choices, "selected": choices.preselected(visit.session.projects), "errors": {}}
    return visit.render("projects.html", page)


async def open_project(request: Request) -> Response:
    visit = await Visit.open(request)
    token = visit.require_user()
    form = await visit.form()
    project = str(form.get("project", "")).strip()
    try:
        # The gateway decides, whatever the page offered: a forged choice is refused here.
        await check_project(visit, token, project)
    except GatewayError as error:
        if error.code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT):
            raise
        choices = await project_choices(visit, token)
        page = {"choices": choices, "selected": project, "errors": {"project": error.describe()}}
        return visit.render("projects.html", page, status_code=400)
    visit.session.remember_project(project)
    visit.dirty = True
    return visit.redirect(f"/p/{project}/texts")
