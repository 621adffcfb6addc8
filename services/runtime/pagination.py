"""AIP-158 pagination: validated page sizes and opaque page tokens.

A token is the keyset position of the last row served (base64url JSON); it is opaque
to clients but not secret, so it is not signed: a forged token can only move the
caller inside what it may already read."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int, *, field: str = "page_size") -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument.field(field, f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested or DEFAULT_PAGE_SIZE


def encode_page_token(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, *, keys: set[str], field: str = "page_token") -> dict[str, Any] | None:
    """The position in `token`, None for the first page; InvalidArgument when malformed."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument.field(field, "is not a page token returned by this API") from None
    if not isinstance(position, dict) or set(position) != keys:
        raise InvalidArgument.field(field, "is not a page token returned by this API")
    return position
