"""Duplicate detection and policy: two texts are duplicates when their normalized forms
are equal, and what becomes of a generated text depends on whether it is one.

Normalizing folds the differences a reviewer would not count as a new text: Unicode
compatibility forms (NFKC: full-width letters, ligatures), case (casefold, which also
maps ß to ss), runs of whitespace, and punctuation or spaces around the text ("Hello!"
and "hello" are the same example). Only the sha256 of the normal form is stored.
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from collections.abc import Collection, Sequence

from services.task_store.records import JobError

_WHITESPACE = re.compile(r"\s+")

# Why a unique job's slot failed: its worker ran out of attempts at a new text.
DUPLICATE_FAILURE = JobError(
    "DUPLICATE", "the provider repeated texts the project already has, on every attempt this unique job allows"
)


class Handling(enum.Enum):
    """What becomes of a generated text."""

    WRITE = "write"  # staged; flagged when it is a duplicate
    REJECT = "reject"  # not written: the worker retries the slot
    FAIL = "fail"  # not written: the slot fails with DUPLICATE_FAILURE


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


def repeats(fingerprints: Sequence[bytes], known: Collection[bytes]) -> list[bool]:
    """For each text of a batch, in order, whether it is a duplicate: the project already
    has its fingerprint (`known`), or an earlier text of the same batch had it."""
    seen = set(known)
    flags = []
    for digest in fingerprints:
        flags.append(digest in seen)
        seen.add(digest)
    return flags


def handling(is_duplicate: bool, *, reject_duplicate: bool, unique: bool) -> Handling:
    """A new text is written. A duplicate is rejected while the worker has attempts
    left (it sets `reject_duplicate` and retries the slot); on its last attempt a unique
    job fails the slot, since it never stages a duplicate, and any other job stages it
    flagged, for the reviewer to judge."""
    if not is_duplicate:
        return Handling.WRITE
    if reject_duplicate:
        return Handling.REJECT
    if unique:
        return Handling.FAIL
    return Handling.WRITE
