"""services/task_store/spans.py without a database: the rules every stored span obeys."""

from __future__ import annotations

import pytest

from services.runtime.errors import InvalidArgument
from services.task_store import spans
from services.task_store.records import Span


def violated_field(text: str, given: list[Span], **options) -> str:
    with pytest.raises(InvalidArgument) as raised:
        spans.checked(text, given, field="s", **options)
    return raised.value.violations[0].field


def test_offsets_are_code_points_over_the_text():
    text = "💊 Aspirin"  # one code point, two UTF-16 units, four UTF-8 bytes
    assert spans.checked(text, [Span(2, 9, "DRUG", "Aspirin")], field="s") == (Span(2, 9, "DRUG", "Aspirin"),)
    assert violated_field(text, [Span(3, 10, "DRUG", "Aspirin")]) == "s[0].end"


def test_overlapping_spans_are_allowed_in_the_model():
    given = [Span(0, 7, "DRUG", "Aspirin"), Span(0, 11, "DRUG", "Aspirin 5mg")]
    assert spans.checked("Aspirin 5mg", given, field="s") == tuple(given)


@pytest.mark.parametrize(
    ("span", "field"),
    [
        (Span(-1, 2, "DRUG", "As"), "s[0].start"),
        (Span(7, 8, "DRUG", "x"), "s[0].start"),
        (Span(2, 2, "DRUG", ""), "s[0].end"),
        (Span(2, 1, "DRUG", ""), "s[0].end"),
        (Span(0, 8, "DRUG", "Aspirin"), "s[0].end"),
        (Span(0, 3, "DRUG", "asp"), "s[0].text"),
        (Span(0, 3, "drug", "Asp"), "s[0].label"),
    ],
)
def test_spans_outside_the_text_or_not_matching_it_are_refused(span, field):
    assert violated_field("Aspirin", [span]) == field


def test_only_allowed_labels_pass_when_a_label_set_is_given():
    assert violated_field("Aspirin", [Span(0, 7, "DOSE", "Aspirin")], allowed_labels={"DRUG"}) == "s[0].label"
    assert spans.checked("Aspirin", [Span(0, 7, "DRUG", "Aspirin")], field="s", allowed_labels={"DRUG"})
