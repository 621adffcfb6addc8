"""Duplicate detection and policy on their own, without a database: which texts count
as the same, which texts of a batch repeat, and what becomes of a repeat."""

from __future__ import annotations

import pytest
from synthtasks.v1 import generation_service_pb2 as generation_pb2

from services.task_store import duplicates
from services.task_store.duplicates import Handling


@pytest.mark.parametrize(
    "first, second",
    [
        ("Hello!", "hello"),
        ("  Hello,   world  ", "hello, world"),
        ("Straße", "STRASSE"),
        ("\uff46\uff55\uff4c\uff4c \uff57\uff49\uff44\uff54\uff48", "full width"),  # full-width letters
        ("«Quoted»", "quoted"),
    ],
)
def test_texts_a_reviewer_would_not_count_as_new_share_a_fingerprint(first, second):
    assert duplicates.normalize(first) == duplicates.normalize(second)
    assert duplicates.fingerprint(first) == duplicates.fingerprint(second)


@pytest.mark.parametrize("first, second", [("hello world", "hello, world"), ("a cat", "a dog"), ("x", "x y")])
def test_different_texts_have_different_fingerprints(first, second):
    assert duplicates.fingerprint(first) != duplicates.fingerprint(second)


def test_a_text_repeats_one_the_project_has_or_an_earlier_one_of_its_batch():
    a, b, c = (duplicates.fingerprint(text) for text in ("alpha", "beta", "gamma"))
    known = {b}
    assert duplicates.repeats([a, b, c, a, c, a], known) == [False, True, False, True, True, True]
    assert known == {b}
    assert duplicates.repeats([], known) == []


@pytest.mark.parametrize(
    "is_duplicate, reject_duplicate, unique, expected",
    [
        (False, False, False, Handling.WRITE),
        (False, True, True, Handling.WRITE),
        (False, False, True, Handling.WRITE),
        (True, False, False, Handling.WRITE),
        (True, True, False, Handling.REJECT),
        (True, True, True, Handling.REJECT),
        (True, False, True, Handling.FAIL),
    ],
)
def test_what_becomes_of_a_generated_text(is_duplicate, reject_duplicate, unique, expected):
    assert duplicates.handling(is_duplicate, reject_duplicate=reject_duplicate, unique=unique) is expected


def test_a_failed_duplicate_slot_gives_a_failure_reason_of_the_api():
    # Job errors hold FailureReason names without their prefix (records.JobError).
    name = f"FAILURE_REASON_{duplicates.DUPLICATE_FAILURE.reason}"
    assert generation_pb2.FailureReason.Value(name) == generation_pb2.FAILURE_REASON_DUPLICATE
