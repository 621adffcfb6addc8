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


def test_an_edit_elsewhere_moves_spans_with_their_text():
    old = "Aspirin daily"
    moved = spans.relocated(old, "Take Aspirin daily", [Span(0, 7, "DRUG", "Aspirin"), Span(8, 13, "F", "daily")])
    assert moved == (Span(5, 12, "DRUG", "Aspirin"), Span(13, 18, "F", "daily"))


def test_a_repeated_surface_text_goes_to_the_occurrence_nearest_its_old_place():
    old = "Aspirin or Aspirin"
    # An insertion before the second occurrence: the span follows it, not the first one.
    new = "Aspirin or plain Aspirin"
    assert spans.relocated(old, new, [Span(11, 18, "DRUG", "Aspirin")]) == (Span(17, 24, "DRUG", "Aspirin"),)
    assert spans.relocated(old, new, [Span(0, 7, "DRUG", "Aspirin")]) == (Span(0, 7, "DRUG", "Aspirin"),)


def test_a_span_whose_text_is_gone_is_flagged_and_covers_what_its_range_became():
    old = "Take Aspirin daily"
    new = "Take Aspirix daily"
    (flagged,) = spans.relocated(old, new, [Span(5, 12, "DRUG", "Aspirin")])
    assert flagged == Span(5, 12, "DRUG", "Aspirix", needs_review=True)
    assert new[flagged.start : flagged.end] == flagged.text


def test_a_span_whose_characters_were_all_deleted_is_removed():
    old = "Take Aspirin 5 mg daily"
    kept = spans.relocated(old, "Take 5 mg daily", [Span(5, 12, "DRUG", "Aspirin"), Span(13, 17, "DOSE", "5 mg")])
    assert kept == (Span(5, 9, "DOSE", "5 mg"),)


@pytest.mark.parametrize(
    "new",
    ["", "x", "Aspirin", "a completely different sentence", "Take 🙂 daily", "Take Aspirin", "AspirinAspirin daily"],
)
def test_relocated_spans_always_lie_inside_the_new_text_and_match_it(new):
    old = "Take Aspirin 5 mg daily"
    given = [Span(5, 12, "DRUG", "Aspirin"), Span(13, 17, "DOSE", "5 mg"), Span(18, 23, "FREQUENCY", "daily")]
    for span in spans.relocated(old, new, given):
        assert 0 <= span.start < span.end <= len(new)
        assert new[span.start : span.end] == span.text


def test_overlaps_are_found_whatever_the_order():
    assert spans.overlapping([Span(0, 3, "A", "abc"), Span(3, 5, "B", "de")]) is None
    assert spans.overlapping([Span(4, 9, "A", "x"), Span(0, 2, "B", "y"), Span(1, 5, "C", "z")]) == (1, 2)
