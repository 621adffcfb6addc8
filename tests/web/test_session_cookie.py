"""The session cookie and the return paths of forms, without a browser."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.fernet import Fernet
from starlette.requests import Request
from starlette.responses import Response

from services.web.session import COOKIE_NAME, Session, SessionCodec
from services.web.visits import safe_return_path


def _request_with(cookie: str) -> Request:
    return Request({"type": "http", "headers": [(b"cookie", f"{COOKIE_NAME}={cookie}".encode())]})


def _cookie_of(response: Response) -> str:
    header = response.headers["set-cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_the_cookie_is_encrypted_and_round_trips():
    key = Fernet.generate_key().decode()
    codec = SessionCodec([key], max_age_seconds=3600, secure=True)
    session = Session(token="st_very_secret_token", admin=True, signed_in_at=time.time())
    response = Response()
    codec.write(response, session)
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "secure" in header
    cookie = _cookie_of(response)
    assert "st_very_secret_token" not in cookie
    read, expired = codec.read(_request_with(cookie))
    assert (read.token, read.admin, read.csrf, expired) == ("st_very_secret_token", True, session.csrf, False)
    assert "st_very_secret_token" not in repr(read)


def test_a_tampered_or_foreign_cookie_is_no_session():
    key = Fernet.generate_key().decode()
    codec = SessionCodec([key], max_age_seconds=3600, secure=False)
    foreign = Fernet(Fernet.generate_key()).encrypt(json.dumps({"token": "x"}).encode()).decode()
    for cookie in (foreign, "garbage", foreign[:-4] + "AAAA"):
        read, expired = codec.read(_request_with(cookie))
        assert read.token is None and expired


def test_a_new_key_first_still_reads_cookies_of_the_old_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    response = Response()
    SessionCodec([old], max_age_seconds=3600, secure=False).write(
        response, Session(token="t", signed_in_at=time.time())
    )
    read, _ = SessionCodec([new, old], max_age_seconds=3600, secure=False).read(_request_with(_cookie_of(response)))
    assert read.token == "t"


@pytest.mark.parametrize(
    "path", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "", None]
)
def test_forms_cannot_redirect_elsewhere(path):
    assert safe_return_path(path, "/fallback") == "/fallback"


def test_forms_return_to_paths_of_this_site():
    assert safe_return_path("/p/demo/texts?job=abc&page=x", "/fallback") == "/p/demo/texts?job=abc&page=x"
