"""The one etag format of every resource: `v{version}`, the row's version counter.

A malformed etag is INVALID_ARGUMENT naming the field; a well-formed one that does
not match the current version is the repository's ABORTED."""

from __future__ import annotations

import re

from services.runtime.errors import InvalidArgument

_ETAG = re.compile(r"v([0-9]{1,18})")


def etag(version: int) -> str:
    return f"v{version}"


def expected_version(value: str, *, field: str) -> int | None:
    """The version an etag names; None when no etag was sent (no concurrency check)."""
    if not value:
        return None
    match = _ETAG.fullmatch(value)
    if match is None:
        raise InvalidArgument.field(field, "is not an etag returned by this API (like v3)")
    return int(match[1])
