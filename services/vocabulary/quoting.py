"""Quoting a caller's value in an error message: at most a short prefix, so that a
reply stays small whatever the input (a long value echoed whole once pushed a reply's
metadata over gRPC's limit and turned INVALID_ARGUMENT into RESOURCE_EXHAUSTED)."""

from __future__ import annotations

PREFIX_CHARS = 40


def quoted(value: str, *, limit: int = PREFIX_CHARS) -> str:
    """`repr` of `value`, cut to `limit` characters with a marker when longer."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"
