"""AIP-158 pagination: page sizes and opaque page tokens.

A token is the keyset position of the last row served (base64url of a flat JSON
object); it is opaque to clients but not secret, so it is not signed: a forged token
can only move the caller inside what it may already read. Decoding trusts nothing: the
size is bounded before decoding, nesting is refused before parsing (no recursion on a
`[[[[…` bomb), and every field must have the type the list expects. Anything else is
INVALID_ARGUMENT naming `page_token`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Our tokens are well under 200 characters; anything much longer was not made here.
MAX_TOKEN_CHARS = 512
_FIELD = "page_token"
_NOT_OURS = "is not a page token returned by this API"


def page_size(requested: int, *, field: str = "page_size") -> int:
    """AIP-158: 0 means the default, a size above the maximum is capped to it."""
    if requested < 0:
        raise InvalidArgument.field(field, "must not be negative")
    return min(requested, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE


def encode(position: dict[str, str | int]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, *, fields: dict[str, type]) -> dict[str, Any] | None:
    """The position in `token` (exactly `fields`, each of its type), None for the first
    page; InvalidArgument naming page_token when it is anything else."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument.field(_FIELD, _NOT_OURS)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        text = raw.decode()
    except (binascii.Error, ValueError):
        raise InvalidArgument.field(_FIELD, _NOT_OURS) from None
    # A flat object has exactly one opening bracket and no inner ones; checking before
    # parsing means json never recurses on a hostile token.
    if text.count("{") + text.count("[") != 1 or not text.lstrip().startswith("{"):
        raise InvalidArgument.field(_FIELD, _NOT_OURS)
    try:
        position = json.loads(text)
    except ValueError:
        raise InvalidArgument.field(_FIELD, _NOT_OURS) from None
    if not isinstance(position, dict) or set(position) != set(fields):
        raise InvalidArgument.field(_FIELD, _NOT_OURS)
    for key, expected in fields.items():
        # `type(...) is` so that a bool is not taken for an int.
        if type(position[key]) is not expected:
            raise InvalidArgument.field(_FIELD, _NOT_OURS)
        if expected is str and "\x00" in position[key]:
            raise InvalidArgument.field(_FIELD, _NOT_OURS)
    return position
