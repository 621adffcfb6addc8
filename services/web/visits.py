"""One browser request as the pages see it: its session, its checked form, its answer.

Every page handler starts with `await Visit.open(request)`, asks for what it needs
(`require_user`, `form()` which checks the CSRF token, `project()`), and answers with
`render` or `redirect`, which write the session cookie back when it changed."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.web.errors import CsrfRefused, NotFound, SignInRequired
from services.web.session import Session

if TYPE_CHECKING:
    from services.web.app import WebApp

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def safe_return_path(value: str | None, fallback: str) -> str:
    """A same-site path to go back to after a form; anything else (other hosts,
    `//evil`, schemes) falls back, so forms cannot be turned into open redirects."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return fallback


def checked_project_id(project: str) -> str:
    """`project` when it is a well-formed project id, else NotFound (before it reaches a URL)."""
    if not _PROJECT_ID.fullmatch(project):
        raise NotFound("There is no such project: a project id is lowercase letters, digits, - and _.")
    return project


@dataclass
class Visit:
    request: Request
    web: WebApp
    session: Session
    expired: bool
    dirty: bool = False

    @classmethod
    async def open(cls, request: Request) -> Visit:
        web: WebApp = request.app.state.web
        session, expired = web.sessions.read(request)
        visit = cls(request, web, session, expired)
        if expired:
            visit.session.notice = "Your session expired. Sign in again."
            visit.dirty = True
        return visit

    def require_user(self) -> str:
        """The user's token; sends them to the sign-in page when there is none."""
        if self.session.token is None:
            raise SignInRequired(self)
        return self.session.token

    def project(self) -> str:
        """The project id of the URL (`/p/{project}/…`), remembered for the project menu."""
        project = checked_project_id(self.request.path_params["project"])
        if not self.session.projects or self.session.projects[0] != project:
            self.session.remember_project(project)
            self.dirty = True
        return project

    async def form(self) -> FormData:
        """The posted form, refused unless it carries this session's CSRF token."""
        form = await self.request.form()
        sent = form.get(CSRF_FIELD) or self.request.headers.get(CSRF_HEADER) or ""
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), self.session.csrf.encode()):
            raise CsrfRefused(self)
        return form

    def _url_project(self) -> str | None:
        """The URL's project for the navigation, when it is a well-formed project id."""
        project = self.request.path_params.get("project", "")
        return project if _PROJECT_ID.fullmatch(project) else None

    def here(self) -> str:
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def finish(self, response: Response) -> Response:
        """The response, with the session cookie written back when it changed."""
        if self.dirty:
            self.web.sessions.write(response, self.session)
        response.headers["Cache-Control"] = "no-store"
        return response

    def render(self, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200) -> Response:
        notice, self.session.notice = self.session.notice, ""
        if notice:
            self.dirty = True
        page = {
            "session": self.session,
            "csrf_token": self.session.csrf,
            "notice": notice,
            "here": self.here(),
            "project": self._url_project(),
            **(context or {}),
        }
        response = self.web.templates.TemplateResponse(self.request, template, page, status_code=status_code)
        return self.finish(response)

    def redirect(self, path: str, *, notice: str = "", **query: str) -> Response:
        if notice:
            self.session.notice = notice
            self.dirty = True
        kept = {k: v for k, v in query.items() if v}
        url = path + (("&" if "?" in path else "?") + urlencode(kept) if kept else "")
        return self.finish(RedirectResponse(url, status_code=303))
