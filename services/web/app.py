"""Wiring of the review web app: routes, templates, security headers, error pages."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web import account_pages, admin_pages, generation_pages, review_pages
from services.web.config import Settings
from services.web.errors import CsrfRefused, NotFound, SignInRequired, TooManyStreams
from services.web.gateway import Gateway, GatewayError
from services.web.metrics import RequestMetrics
from services.web.presentation import FILTERS
from services.web.session import Session, SessionCodec
from services.web.streams import StreamCounter
from services.web.visits import Visit

SERVICE = "web"
_HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# Scripts and styles only from this service's own /static (no inline code, no CDN);
# no frames, no plugins, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
_STATUS_OF_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class SecurityHeaders:
    """Adds the CSP and friends to every response (pure ASGI, so streams stay streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass
class WebApp:
    settings: Settings
    sessions: SessionCodec
    gateway: Gateway
    templates: Jinja2Templates
    streams: StreamCounter


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return exc.visit.redirect("/sign-in")


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CsrfRefused)
    message = "This form was refused: its security token is missing or out of date. Reload the page and try again."
    return exc.visit.render("denied.html", {"message": message}, status_code=403)


async def _not_found(request: Request, exc: Exception) -> Response:
    visit = await Visit.open(request)
    return visit.render("error.html", {"message": str(exc) or "There is no such page."}, status_code=404)


async def _too_many_streams(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(str(exc), status_code=429)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    visit = await Visit.open(request)
    if exc.code == grpc.StatusCode.UNAUTHENTICATED:
        # The token was revoked (or the gateway forgot it): the session is over.
        visit.session = Session(notice="Your token is no longer accepted. Sign in again.")
        visit.dirty = True
        return visit.redirect("/sign-in")
    if exc.code == grpc.StatusCode.PERMISSION_DENIED:
        # A project the token may not act in does not belong in the project menu.
        refused = request.path_params.get("project")
        if refused in visit.session.projects:
            visit.session.projects.remove(refused)
            visit.dirty = True
        message = "This page needs an admin token." if exc.reason == "ADMIN_REQUIRED" else exc.describe()
        return visit.render("denied.html", {"message": message}, status_code=403)
    if exc.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        log.error("gateway call failed", extra={"code": exc.code.name, "gateway_request_id": exc.request_id})
    return visit.render(
        "error.html",
        {"message": exc.describe(), "fields": exc.field_errors},
        status_code=_STATUS_OF_CODE.get(exc.code, 502),
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Ready when the gateway answers its health check: without it no page works."""
    web: WebApp = request.app.state.web
    try:
        reply = await health_pb2_grpc.HealthStub(web.gateway.channel).Check(  # type: ignore[attr-defined]  # stubs omit it
            health_pb2.HealthCheckRequest(), timeout=3.0
        )
    except grpc.aio.AioRpcError:
        return PlainTextResponse("gateway unreachable", status_code=503)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return PlainTextResponse("gateway not serving", status_code=503)
    return PlainTextResponse("ok")


def _routes() -> list:
    a, g, r, adm = account_pages, generation_pages, review_pages, admin_pages
    return [
        Route("/", a.home),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/sign-in", a.sign_in_page, methods=["GET"]),
        Route("/sign-in", a.sign_in, methods=["POST"]),
        Route("/sign-out", a.sign_out, methods=["POST"]),
        Route("/projects", a.projects_page, methods=["GET"]),
        Route("/projects", a.open_project, methods=["POST"]),
        Route("/generate", g.switch_project, methods=["GET"]),
        Route("/p/{project}/generate", g.generate_page, methods=["GET"]),
        Route("/p/{project}/generate", g.create_job, methods=["POST"]),
        Route("/p/{project}/jobs", g.jobs_page),
        Route("/p/{project}/jobs/{job}", g.job_page),
        Route("/p/{project}/jobs/{job}/events", g.job_events),
        Route("/p/{project}/jobs/{job}/cancel", g.cancel_job, methods=["POST"]),
        Route("/p/{project}/texts", r.texts_page),
        Route("/p/{project}/texts/export", r.export),
        Route("/p/{project}/texts/batch", r.batch, methods=["POST"]),
        Route("/p/{project}/texts/import-job", r.import_job, methods=["POST"]),
        Route("/p/{project}/texts/{text}/edit", r.edit_text, methods=["POST"]),
        Route("/p/{project}/texts/{text}/tags", r.tag_text, methods=["POST"]),
        Route("/p/{project}/tasks", r.tasks_page),
        Route("/admin/providers", adm.providers_page),
        Route("/admin/providers/new", adm.new_provider_page, methods=["GET"]),
        Route("/admin/providers/new", adm.create_provider, methods=["POST"]),
        Route("/admin/providers/test", adm.test_connection, methods=["POST"]),
        Route("/admin/providers/{provider}", adm.provider_page, methods=["GET"]),
        Route("/admin/providers/{provider}/validate", adm.validate_provider, methods=["POST"]),
        Route("/admin/providers/{provider}/rotate-key", adm.rotate_key, methods=["POST"]),
        Route("/admin/providers/{provider}/delete", adm.delete_provider, methods=["POST"]),
        Route("/admin/assignments", adm.assign_provider, methods=["POST"]),
        Route("/admin/assignments/remove", adm.unassign_provider, methods=["POST"]),
        Route("/admin/tokens", adm.tokens_page, methods=["GET"]),
        Route("/admin/tokens", adm.create_token, methods=["POST"]),
        Route("/admin/tokens/{token}/revoke", adm.revoke_token, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]


def create_app(settings: Settings) -> Starlette:
    templates = Jinja2Templates(directory=_HERE / "templates")
    templates.env.filters.update(FILTERS)
    web = WebApp(
        settings=settings,
        sessions=SessionCodec(
            settings.session_keys.get_secret_value().split(","),
            max_age_seconds=settings.session_max_age_seconds,
            secure=settings.secure_cookies,
        ),
        gateway=Gateway(settings),
        templates=templates,
        streams=StreamCounter(settings.max_streams_per_session),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # grpc.aio channels belong to the loop they are made on: the server's.
        web.gateway.open()
        yield
        await web.gateway.close()

    app = Starlette(
        routes=_routes(),
        lifespan=lifespan,
        exception_handlers={
            SignInRequired: _sign_in_required,
            CsrfRefused: _csrf_refused,
            NotFound: _not_found,
            TooManyStreams: _too_many_streams,
            GatewayError: _gateway_error,
        },
        middleware=[Middleware(RequestMetrics), Middleware(SecurityHeaders)],
    )
    app.state.web = web
    return app
