"""Pre-annotation's pure part (services/generator_worker/annotation.py): what is asked,
how replies are read, and where entities land in the text. No database, no provider."""

from __future__ import annotations

import json

import pytest
from synthtasks.v1 import provider_service_pb2 as provider_pb

from services.generator_worker import annotation
from services.generator_worker.annotation import BadReply, Entity, Label

LABELS = [Label("DRUG", "a medication name"), Label("FREQUENCY", "")]


def located(text: str, placement: annotation.Placement) -> list[tuple[str, str]]:
    """Every span's label and the characters at its offsets, which must be its surface."""
    assert all(text[span.start : span.end] == span.surface for span in placement.spans)
    return [(span.label, text[span.start : span.end]) for span in placement.spans]


def test_json_schema_mode_asks_for_a_strict_schema_whose_labels_are_an_enum():
    response_format = annotation.response_format(provider_pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA, LABELS)

    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert spec["strict"] is True
    entity = spec["schema"]["properties"]["entities"]["items"]
    assert entity["properties"]["label"]["enum"] == ["DRUG", "FREQUENCY"]
    assert entity["additionalProperties"] is False and spec["schema"]["additionalProperties"] is False


def test_json_object_mode_asks_for_json_and_the_instructions_spell_out_the_shape_and_bound_values():
    assert annotation.response_format(provider_pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT, LABELS) == {"type": "json_object"}
    told = annotation.instructions(LABELS, {"ibuprofen": "DRUG"})
    assert "JSON" in told and '"entities"' in told
    assert "- DRUG: a medication name" in told and "- FREQUENCY" in told
    assert '"ibuprofen" as DRUG' in told


def test_a_good_reply_is_parsed_and_extra_keys_are_ignored():
    content = json.dumps(
        {"text": "Take aspirin daily.", "entities": [{"text": "aspirin", "label": "DRUG", "start": 5}]}
    )
    assert annotation.parse(content, ["DRUG"]) == annotation.Reply("Take aspirin daily.", (Entity("aspirin", "DRUG"),))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ('{"text": "Take aspirin", "entities": [{"text": "asp', "Invalid JSON"),
        ('{"content": "Take aspirin", "labels": ["DRUG"]}', "text: Field required"),
        ('{"text": "Take aspirin", "entities": "aspirin"}', "entities: Input should be a valid array"),
        ('{"text": "Take aspirin", "entities": [{"text": "aspirin", "label": "DOSE"}]}', "'DOSE' is not one of DRUG"),
    ],
)
def test_malformed_wrong_shape_or_unknown_label_is_a_bad_reply_saying_what_is_wrong(content, complaint):
    with pytest.raises(BadReply, match=complaint) as bad:
        annotation.parse(content, ["DRUG", "FREQUENCY"])
    assert str(bad.value) in annotation.repair_request(str(bad.value))


def test_entities_are_placed_left_to_right_without_overlap_at_code_point_offsets():
    text = "Ärztin: aspirin 100 mg, then aspirin again daily 🙂 daily"
    entities = [
        Entity("aspirin", "DRUG"),
        Entity("daily", "FREQUENCY"),
        Entity("aspirin", "DRUG"),
        Entity(" daily ", "FREQUENCY"),
    ]

    placement = annotation.locate(text, entities, {})

    assert located(text, placement) == [
        ("DRUG", "aspirin"),
        ("DRUG", "aspirin"),
        ("FREQUENCY", "daily"),
        ("FREQUENCY", "daily"),
    ]
    assert [span.start for span in placement.spans] == [8, 29, 43, 51]  # code points: Ä and 🙂 count one each
    assert placement.dropped == 0


def test_entities_not_in_the_text_or_without_a_free_occurrence_are_dropped_and_counted():
    text = "Take aspirin once."
    entities = [Entity("aspirin", "DRUG"), Entity("ibuprofen", "DRUG"), Entity("aspirin", "DRUG"), Entity(" ", "DRUG")]

    placement = annotation.locate(text, entities, {})

    assert located(text, placement) == [("DRUG", "aspirin")]
    assert placement.dropped == 3


def test_a_bound_value_is_always_marked_added_or_relabelled_when_the_model_missed_it():
    text = "Take ibuprofen weekly, not aspirin tablets."

    added = annotation.locate(text, [Entity("weekly", "FREQUENCY")], {"ibuprofen": "DRUG"})
    assert located(text, added) == [("DRUG", "ibuprofen"), ("FREQUENCY", "weekly")]

    relabelled = annotation.locate(text, [Entity("ibuprofen", "FREQUENCY")], {"ibuprofen": "DRUG"})
    assert located(text, relabelled) == [("DRUG", "ibuprofen")]

    inside_longer = annotation.locate(text, [Entity("aspirin tablets", "DRUG")], {"aspirin": "DRUG"})
    assert located(text, inside_longer) == [("DRUG", "aspirin tablets")]
    assert added.dropped == relabelled.dropped == inside_longer.dropped == 0


def test_a_bound_value_missing_from_the_text_is_counted_not_guessed():
    text = "Take it weekly."

    placement = annotation.locate(text, [Entity("weekly", "FREQUENCY")], {"ibuprofen": "DRUG"})

    assert located(text, placement) == [("FREQUENCY", "weekly")]
    assert placement.dropped == 1
