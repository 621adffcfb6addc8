"""Page tokens of the task store's lists: the keyset position, bound to the query it
belongs to, so a token cannot be replayed against another parent or filter."""

from __future__ import annotations

import hashlib

from services.runtime.errors import InvalidArgument
from services.task_store.records import Page
from services.vocabulary import page_tokens


def query_key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:12]


def page_position(token: str, query: str) -> int | None:
    position = page_tokens.decode(token, fields={"seq": int, "query": str})
    if position is None:
        return None
    seq = position["seq"]
    if seq < 0:
        raise InvalidArgument.field("page_token", "is not a page token returned by this API")
    if position["query"] != query:
        raise InvalidArgument.field("page_token", "belongs to a different query (parent or filter changed)")
    return seq


def next_token(page: Page, query: str) -> str:
    if page.next_seq is None:
        return ""
    return page_tokens.encode({"seq": page.next_seq, "query": query})
