"""Why a page cannot be shown; app.py turns each into a page or a redirect.

    PageError            (root)
    ├── SignInRequired   no session, or it expired: go to the sign-in page
    ├── CsrfRefused      a state-changing request without this session's CSRF token (403)
    ├── NotFound         a URL naming nothing (404)
    └── TooManyStreams   the session holds its maximum of live job views (429)

Failed gateway calls are `services.web.gateway.GatewayError`.
"""

from __future__ import annotations

from typing import Any


class PageError(Exception):
    """Root of the errors that stop a page from being shown."""


class SignInRequired(PageError):
    """Raised when a page needs a signed-in user and the session has no token."""

    def __init__(self, visit: Any) -> None:
        super().__init__("sign in first")
        self.visit = visit


class CsrfRefused(PageError):
    """Raised when a form or script request does not carry the session's CSRF token."""

    def __init__(self, visit: Any) -> None:
        super().__init__("the form's security token is missing or stale")
        self.visit = visit


class NotFound(PageError):
    """Raised when a URL names a project, job or text that cannot exist."""


class TooManyStreams(PageError):
    """Raised when a session opens more live job views than allowed."""
