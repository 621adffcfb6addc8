"""Duplicate detection: two texts are duplicates when their normalized forms are equal.

Normalizing folds the differences a reviewer would not count as a new text: Unicode
compatibility forms (NFKC: full-width letters, ligatures), case (casefold, which also
maps ß to ss), runs of whitespace, and punctuation or spaces around the text ("Hello!"
and "hello" are the same example). Only the sha256 of the normal form is stored.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    collapsed = _WHITESPACE.sub(" ", folded)
    start, end = 0, len(collapsed)
    while start < end and _is_edge(collapsed[start]):
        start += 1
    while end > start and _is_edge(collapsed[end - 1]):
        end -= 1
    return collapsed[start:end]


def fingerprint(text: str) -> bytes:
    return hashlib.sha256(normalize(text).encode("utf-8")).digest()


def _is_edge(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")
