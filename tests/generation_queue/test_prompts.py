"""Prompt templates and the spreading of variable values over a job's slots."""

from __future__ import annotations

import collections
import itertools

import pytest

from services.generation_queue.prompts import MissingValue, PromptSyntaxError, placeholders, render, slot_variables


def test_placeholders_are_the_identifiers_in_single_braces() -> None:
    assert placeholders("Write about {drug} for a {age_group} patient, {drug} again") == {"drug", "age_group"}


def test_double_braces_are_literal_braces_not_placeholders() -> None:
    template = 'Answer as JSON like {{"text": "..."}} about {drug}'

    assert placeholders(template) == {"drug"}
    assert render(template, {"drug": "aspirin"}) == 'Answer as JSON like {"text": "..."} about aspirin'


def test_rendering_without_variables_still_unescapes_braces() -> None:
    assert render("a {{b}} c", {}) == "a {b} c"


@pytest.mark.parametrize("template", ["{drug name}", "{", "}", "a { b", "{{drug}", "{drug}}", "{1x}", "{}"])
def test_stray_braces_and_non_identifier_names_are_syntax_errors(template: str) -> None:
    with pytest.raises(PromptSyntaxError):
        placeholders(template)


def test_rendering_a_placeholder_without_a_value_is_refused() -> None:
    with pytest.raises(MissingValue):
        render("about {drug}", {})


def test_no_variables_means_no_values() -> None:
    assert slot_variables([], 0, 10) == {}


def test_one_variable_spreads_texts_evenly_in_contiguous_runs() -> None:
    drugs = [f"drug{i}" for i in range(12)]
    picks = [slot_variables([("drug", drugs)], slot, 100)["drug"] for slot in range(100)]

    counts = collections.Counter(picks)
    assert set(counts) == set(drugs)
    assert max(counts.values()) - min(counts.values()) <= 1
    # Contiguous runs: each value's slots form one block, so one request can ask for n choices.
    assert sum(1 for a, b in itertools.pairwise(picks) if a != b) == len(drugs) - 1


def test_combinations_get_texts_evenly_when_there_are_fewer_combinations_than_texts() -> None:
    variables = [("drug", ["a", "b", "c"]), ("age", ["child", "adult"]), ("tone", ["formal", "casual"])]
    combos = [tuple(slot_variables(variables, slot, 50).values()) for slot in range(50)]

    counts = collections.Counter(combos)
    assert len(counts) == 12
    assert max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.parametrize(
    ("sizes", "text_count"), [((10, 10), 10), ((4, 4), 6), ((12, 5), 30), ((3, 3, 3), 9), ((7, 2, 5), 11)]
)
def test_each_variable_is_spread_evenly_when_combinations_outnumber_texts(
    sizes: tuple[int, ...], text_count: int
) -> None:
    variables = [(f"v{i}", [f"v{i}-{k}" for k in range(size)]) for i, size in enumerate(sizes)]
    picks = [slot_variables(variables, slot, text_count) for slot in range(text_count)]

    for name, values in variables:
        counts = collections.Counter(pick[name] for pick in picks)
        expected = {value: counts.get(value, 0) for value in values}
        assert max(expected.values()) - min(expected.values()) <= 1, (name, expected)


def test_ten_by_ten_values_over_ten_texts_uses_every_value_of_both_variables() -> None:
    variables = [("a", [str(i) for i in range(10)]), ("b", [str(i) for i in range(10)])]
    picks = [slot_variables(variables, slot, 10) for slot in range(10)]

    assert {p["a"] for p in picks} == {p["b"] for p in picks} == {str(i) for i in range(10)}
    assert len({tuple(p.values()) for p in picks}) == 10


def test_the_values_of_a_slot_depend_only_on_the_slot_and_the_job() -> None:
    variables = [("drug", ["a", "b", "c"]), ("age", ["child", "adult"])]

    assert [slot_variables(variables, s, 7) for s in range(7)] == [slot_variables(variables, s, 7) for s in range(7)]


def test_slots_outside_the_job_are_refused() -> None:
    with pytest.raises(ValueError):
        slot_variables([("drug", ["a"])], 5, 5)
