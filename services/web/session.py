"""The browser session: an encrypted, HttpOnly, SameSite=Strict cookie.

The cookie holds the user's API token, so it is encrypted (Fernet: AES + HMAC), not
only signed; page scripts cannot read it (HttpOnly) and other sites cannot send it
(SameSite=Strict). A session ends `max_age` after sign-in (checked against the time
stored inside, since re-encrypting on every change would otherwise extend it), or at
sign-out. An anonymous session (no token yet) carries the CSRF secret of the sign-in form.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "synthtasks_session"
# Remembered projects beyond this many drop the oldest: keeps the cookie small.
MAX_REMEMBERED_PROJECTS = 20


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Names one session's live streams, for the per-session stream bound.
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    token: str | None = None
    admin: bool = False
    # Project ids the user opened, most recent first.
    projects: list[str] = field(default_factory=list)
    signed_in_at: float = 0.0
    # One message shown on the next page (e.g. "your session expired").
    notice: str = ""

    @property
    def signed_in(self) -> bool:
        return self.token is not None

    def remember_project(self, project: str) -> None:
        self.projects = [project, *(p for p in self.projects if p != project)][:MAX_REMEMBERED_PROJECTS]

    def __repr__(self) -> str:
        # Never let the token reach a log line through a repr.
        return f"Session(signed_in={self.signed_in}, admin={self.admin}, projects={self.projects})"


class SessionCodec:
    """Reads and writes the session cookie."""

    def __init__(self, keys: list[str], *, max_age_seconds: int, secure: bool) -> None:
        self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        self._max_age = max_age_seconds
        self._secure = secure

    def read(self, request: Request) -> tuple[Session, bool]:
        """The request's session and whether a signed-in one just expired."""
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return Session(), False
        try:
            data = json.loads(self._fernet.decrypt(raw.encode(), ttl=self._max_age))
            session = Session(**data)
        except (InvalidToken, ValueError, TypeError):
            # Tampered, written under a retired key, or older than max_age.
            return Session(), True
        if session.signed_in and time.time() - session.signed_in_at > self._max_age:
            return Session(), True
        return session, False

    def write(self, response: Response, session: Session) -> None:
        value = self._fernet.encrypt(json.dumps(asdict(session)).encode()).decode()
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self._max_age,
            httponly=True,
            samesite="strict",
            secure=self._secure,
            path="/",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=self._secure)
