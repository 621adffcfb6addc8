"""The entity balance advanced text by text (balance_updates.py), without a database:
the rules of repository/entity_balance.py's SQL, one text at a time. That a watch's
balance built this way equals the SQL's count is checked through the real stack in
test_watch.py and tests/generator_worker/test_preannotation.py."""

from __future__ import annotations

from datetime import UTC, datetime

from services.task_store.balance_updates import with_text
from services.task_store.records import EntityBalance, LabelBalance, Span, StagedText, TextState, ValueBalance

BOUND = {"drug": "DRUG"}
# A job's balance before its first text, as the SQL lists it: every label and value, zeros.
EMPTY = EntityBalance(
    texts=0,
    spans=0,
    dropped_spans=0,
    labels=(LabelBalance("DOSE", 0, 0), LabelBalance("DRUG", 0, 0)),
    values=(
        ValueBalance("drug", "aspirin", ("DRUG",), 0, 0),
        ValueBalance("drug", "ibuprofen", ("DRUG",), 0, 0),
        ValueBalance("when", "daily", (), 0, 0),
        ValueBalance("when", "weekly", (), 0, 0),
    ),
)


def staged(body: str, variables: dict[str, str], *marks: tuple[str, str], state: TextState = TextState.STAGED):
    """A text of the job with a span for each (label, surface), at the surface's first place."""
    spans = tuple(
        Span(body.index(surface), body.index(surface) + len(surface), label, surface) for label, surface in marks
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return StagedText(
        id="t",
        seq=1,
        project="p",
        job_id="j",
        slot=0,
        text=body,
        original_text=body,
        tags=(),
        state=state,
        duplicate=False,
        task_id=None,
        provider="providers/x",
        temperature=0.7,
        seed=None,
        prompt_hash="h",
        model="m",
        variables=variables,
        prompt_tokens=1,
        completion_tokens=1,
        finish_reason="stop",
        latency_us=1,
        generate_time=None,
        version=1,
        create_time=now,
        update_time=now,
        spans=spans,
    )


def labels_of(balance: EntityBalance) -> dict[str, tuple[int, int]]:
    return {item.label: (item.texts, item.spans) for item in balance.labels}


def values_of(balance: EntityBalance) -> dict[tuple[str, str], tuple[int, int]]:
    return {(item.variable, item.value): (item.texts, item.spans) for item in balance.values}


def test_a_text_counts_once_per_label_it_marks_and_each_of_its_spans():
    body = "aspirin 5 mg, aspirin again, 10 mg"
    text = staged(body, {}, ("DRUG", "aspirin"), ("DOSE", "5 mg"), ("DOSE", "10 mg"))
    text.spans = (*text.spans, Span(14, 21, "DRUG", "aspirin"))

    after = with_text(EMPTY, text, BOUND)

    assert (after.texts, after.spans) == (1, 4)
    assert labels_of(after) == {"DOSE": (1, 2), "DRUG": (1, 2)}
    again = with_text(after, staged("no entities here", {}), BOUND)
    assert (again.texts, again.spans) == (2, 4)
    assert labels_of(again) == labels_of(after), "a text without spans adds to no label"


def test_a_value_gains_its_text_and_the_spans_covering_exactly_it_with_the_bound_label():
    body = "aspirin, not aspirin-like; taken daily"
    text = staged(
        body,
        {"drug": "aspirin", "when": "daily"},
        ("DRUG", "aspirin"),
        ("DOSE", "aspirin"),  # the value, but not with the label the variable is bound to
        ("DRUG", "aspirin-like"),  # the label, but not exactly the value
        ("DOSE", "daily"),  # `when` is unbound: any label marks it
    )

    after = with_text(EMPTY, text, BOUND)

    assert values_of(after) == {
        ("drug", "aspirin"): (1, 1),
        ("drug", "ibuprofen"): (0, 0),
        ("when", "daily"): (1, 1),
        ("when", "weekly"): (0, 0),
    }
    assert [item.labels for item in after.values] == [item.labels for item in EMPTY.values]


def test_a_value_the_job_does_not_declare_gets_no_row():
    after = with_text(EMPTY, staged("naproxen daily", {"drug": "naproxen", "when": "daily"}), BOUND)

    assert values_of(after)[("when", "daily")] == (1, 0), "the declared value of the same text counts"
    assert ("drug", "naproxen") not in values_of(after)
    assert after.texts == 1


def test_a_discarded_text_counts_for_nothing():
    marks = (("DRUG", "aspirin"),)
    kept = with_text(EMPTY, staged("aspirin", {"drug": "aspirin"}, *marks), BOUND)
    discarded = with_text(EMPTY, staged("aspirin", {"drug": "aspirin"}, *marks, state=TextState.DISCARDED), BOUND)

    assert kept != EMPTY, "the same text, not discarded, counts"
    assert discarded == EMPTY


def test_a_label_without_a_row_gets_one_at_the_end_and_dropped_spans_are_left_alone():
    before = EntityBalance(3, 5, 2, EMPTY.labels, EMPTY.values)

    after = with_text(before, staged("every day", {}, ("FREQUENCY", "every day")), BOUND)

    assert [item.label for item in after.labels] == ["DOSE", "DRUG", "FREQUENCY"]
    assert labels_of(after)["FREQUENCY"] == (1, 1)
    assert (after.texts, after.spans, after.dropped_spans) == (4, 6, 2)
