"""Exports with spans (issue #14): every format parsed back and checked against what
the receiving tool expects, for staged texts (ExportStagedTexts) and tasks (ExportTasks)."""

from __future__ import annotations

import csv
import io
import json
import re

import grpc
import pytest
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import append, create_job, export_bytes, fails_with, list_all_texts, text

SPAN = task_pb2.Span
LABELS = [generation_pb2.EntityLabel(name=name) for name in ("DRUG", "DOSE", "FREQUENCY")]
# An emoji before the entities: code points and UTF-16 units differ from there on.
BODY = "💊 Take Aspirin 500 mg twice daily."
SPANS = [
    SPAN(start=7, end=14, label="DRUG", text="Aspirin"),
    SPAN(start=15, end=21, label="DOSE", text="500 mg"),
    SPAN(start=22, end=33, label="FREQUENCY", text="twice daily"),
]
MODEL = "gpt-4o-mini-2024-07-18"


def annotated_project(jobs, tasks, project: str, *, bodies=(BODY,), spans=(SPANS,)) -> generation_pb2.GenerationJob:
    job = create_job(jobs, project, text_count=len(bodies), prompt="A note.", labels=LABELS)
    append(
        jobs,
        job.name,
        *(
            text(slot, body, spans=given, model=MODEL)
            for slot, (body, given) in enumerate(zip(bodies, spans, strict=True))
        ),
    )
    return job


def export_tasks(tasks, project: str, export_format: int, **fields) -> tuple[list, bytes]:
    chunks = list(
        tasks.ExportTasks(task_pb2.ExportTasksRequest(parent=f"projects/{project}", format=export_format, **fields))
    )
    return chunks, b"".join(chunk.data for chunk in chunks)


def import_all(tasks, project: str) -> None:
    tasks.ImportStagedTexts(task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", filter={}))


# -- Label Studio ------------------------------------------------------------------------


def check_label_studio_import(tasks_json: object, *, from_name: str, to_name: str) -> None:
    """Label Studio's documented task import format (labelstud.io/guide/task_format,
    /guide/predictions): a list of tasks, each with a `data` object; optional `meta`
    object and `predictions` list; a prediction has `model_version` and `result`, a
    text span result has from_name, to_name, type "labels" and value {start, end,
    text, labels}, where `start`/`end` index `data[to_name's value]` as Python does."""
    assert isinstance(tasks_json, list)
    for task in tasks_json:
        assert set(task) <= {"data", "meta", "predictions", "annotations", "id"}, set(task)
        assert isinstance(task["data"], dict) and isinstance(task["data"]["text"], str)
        assert isinstance(task.get("meta", {}), dict)
        for prediction in task.get("predictions", []):
            assert isinstance(prediction["model_version"], str) and prediction["model_version"]
            for result in prediction["result"]:
                assert (result["from_name"], result["to_name"], result["type"]) == (from_name, to_name, "labels")
                value = result["value"]
                assert set(value) == {"start", "end", "text", "labels"}
                assert isinstance(value["start"], int) and isinstance(value["end"], int)
                assert 0 <= value["start"] < value["end"] <= len(task["data"]["text"])
                assert task["data"]["text"][value["start"] : value["end"]] == value["text"]
                assert isinstance(value["labels"], list) and all(isinstance(label, str) for label in value["labels"])


def test_label_studio_export_of_staged_texts_carries_spans_as_predictions(jobs, tasks, project):
    job = annotated_project(jobs, tasks, project)

    chunks, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_LABEL_STUDIO)

    assert chunks[0].content_type == "application/json" and chunks[0].file_name.endswith(".label-studio.json")
    exported = json.loads(data)
    check_label_studio_import(exported, from_name="label", to_name="text")
    (task,) = exported
    assert task["data"] == {"text": BODY}
    assert task["meta"]["synthetic"] is True and "synthetic" in task["meta"]["tags"]
    assert task["meta"]["generation_job"] == job.name  # lineage in meta, not in data
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == MODEL
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"]) for r in prediction["result"]] == [
        (7, 14, ["DRUG"]),
        (15, 21, ["DOSE"]),
        (22, 33, ["FREQUENCY"]),
    ]


def test_label_studio_names_are_configurable_and_checked(jobs, tasks, project):
    annotated_project(jobs, tasks, project)
    options = task_pb2.ExportOptions(label_studio_from_name="ner", label_studio_to_name="note")
    chunks = tasks.ExportStagedTexts(
        task_pb2.ExportStagedTextsRequest(
            parent=f"projects/{project}", format=task_pb2.EXPORT_FORMAT_LABEL_STUDIO, options=options
        )
    )
    check_label_studio_import(json.loads(b"".join(c.data for c in chunks)), from_name="ner", to_name="note")

    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="options.label_studio_from_name"):
        list(
            tasks.ExportStagedTexts(
                task_pb2.ExportStagedTextsRequest(
                    parent=f"projects/{project}",
                    format=task_pb2.EXPORT_FORMAT_LABEL_STUDIO,
                    options=task_pb2.ExportOptions(label_studio_from_name='a" onload="x'),
                )
            )
        )


def test_flagged_spans_are_left_out_of_exports(jobs, tasks, project):
    annotated_project(jobs, tasks, project)
    (staged,) = list_all_texts(tasks, project)
    tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(
            staged_text=task_pb2.StagedText(name=staged.name, text=BODY.replace("500 mg", "250 mg")),
            update_mask={"paths": ["text"]},
        )
    )

    _, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_LABEL_STUDIO)

    (task,) = json.loads(data)
    labels = [r["value"]["labels"][0] for r in task["predictions"][0]["result"]]
    assert labels == ["DRUG", "FREQUENCY"]  # the dose changed: flagged, not exported


def test_label_studio_export_of_tasks_carries_their_predictions(jobs, tasks, project):
    job = annotated_project(jobs, tasks, project)
    import_all(tasks, project)

    chunks, data = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_LABEL_STUDIO)

    assert chunks[0].file_name.startswith(f"{project}-tasks-")
    exported = json.loads(data)
    check_label_studio_import(exported, from_name="label", to_name="text")
    (task,) = exported
    assert task["meta"]["synthetic"] is True and "synthetic" in task["meta"]["tags"]
    assert task["meta"]["generation_job"] == job.name and task["meta"]["source_staged_text"]
    assert [p["model_version"] for p in task["predictions"]] == [MODEL]
    assert len(task["predictions"][0]["result"]) == 3


# -- JSONL (spaCy / Prodigy) ---------------------------------------------------------------

# Roughly spaCy's English tokenizer on plain prose: words, numbers, single punctuation.
_TOKENS = re.compile(r"\w+|[^\w\s]")


def check_spacy_spans(line: dict) -> None:
    """What spaCy's `Doc.char_span` / `offsets_to_biluo_tags` need: spans inside the
    text, on token boundaries, not overlapping. With spaCy installed, spaCy itself
    says so; without it (it is not a dependency: ~40 MB with its model stack), the same
    check on a tokenizer that splits plain prose as spaCy does."""
    text, spans = line["text"], line["spans"]
    try:
        # Optional: the check runs with spaCy when it is installed.
        import spacy
        from spacy.training import offsets_to_biluo_tags
    except ImportError:
        starts = {m.start() for m in _TOKENS.finditer(text)}
        ends = {m.end() for m in _TOKENS.finditer(text)}
        taken: set[int] = set()
        for span in spans:
            assert set(span) == {"start", "end", "label"}
            assert span["start"] in starts and span["end"] in ends, (span, text)
            covered = set(range(span["start"], span["end"]))
            assert not covered & taken
            taken |= covered
        return
    doc = spacy.blank("en")(text)
    entities = [(s["start"], s["end"], s["label"]) for s in spans]
    assert "-" not in offsets_to_biluo_tags(doc, entities)
    assert all(doc.char_span(*entity) is not None for entity in entities)


def test_jsonl_export_is_the_spacy_prodigy_span_format(jobs, tasks, project):
    annotated_project(jobs, tasks, project)

    _, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_JSONL)

    (line,) = [json.loads(raw) for raw in data.decode("utf-8").splitlines()]
    assert set(line) == {"text", "spans", "meta"}
    assert line["text"] == BODY
    assert line["spans"] == [{"start": s.start, "end": s.end, "label": s.label} for s in SPANS]
    assert [line["text"][s["start"] : s["end"]] for s in line["spans"]] == ["Aspirin", "500 mg", "twice daily"]
    assert line["meta"]["synthetic"] is True and "synthetic" in line["meta"]["tags"]
    check_spacy_spans(line)


def test_jsonl_refuses_overlapping_spans_that_label_studio_keeps(jobs, tasks, project):
    overlapping = [*SPANS, SPAN(start=7, end=21, label="DRUG", text="Aspirin 500 mg")]
    annotated_project(jobs, tasks, project, spans=(overlapping,))

    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="format"):
        export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_JSONL)

    _, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_LABEL_STUDIO)
    (task,) = json.loads(data)
    assert len(task["predictions"][0]["result"]) == 4


def test_jsonl_export_of_tasks(jobs, tasks, project):
    annotated_project(jobs, tasks, project)
    import_all(tasks, project)

    _, data = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_JSONL)

    (line,) = [json.loads(raw) for raw in data.decode("utf-8").splitlines()]
    assert line["spans"] == [{"start": s.start, "end": s.end, "label": s.label} for s in SPANS]
    assert line["meta"]["synthetic"] is True
    check_spacy_spans(line)


# -- CSV and the platform's JSON --------------------------------------------------------------


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("exporter", ["texts", "tasks"])
def test_csv_formula_guard_is_on_by_default_and_can_be_turned_off(jobs, tasks, project, exporter):
    body = "=Aspirin 500 mg"
    annotated_project(
        jobs, tasks, project, bodies=(body,), spans=([SPAN(start=1, end=8, label="DRUG", text="Aspirin")],)
    )
    import_all(tasks, project)

    def export(**options) -> dict[str, str]:
        request_options = task_pb2.ExportOptions(**options)
        if exporter == "texts":
            _, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_CSV, options=request_options)
        else:
            _, data = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_CSV, options=request_options)
        (row,) = csv_rows(data)
        return row

    guarded = export()
    assert guarded["text"] == "'" + body
    assert export(csv_formula_guard=True)["text"] == "'" + body
    verbatim = export(csv_formula_guard=False)
    assert verbatim["text"] == body
    # Offsets index the text itself, so they are right once the guard is off.
    (span,) = json.loads(verbatim["spans"])
    assert verbatim["text"][span["start"] : span["end"]] == span["text"] == "Aspirin"
    assert verbatim["synthetic"] == "true" and "synthetic" in json.loads(verbatim["tags"])


def test_platform_json_of_tasks_says_synthetic(jobs, tasks, project):
    annotated_project(jobs, tasks, project)
    import_all(tasks, project)

    _, data = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_JSON)

    (task,) = json.loads(data)
    assert (task["text"], task["synthetic"]) == (BODY, True)
    assert "synthetic" in task["tags"]
    assert [s["text"] for s in task["meta"]["spans"]] == ["Aspirin", "500 mg", "twice daily"]


def test_task_export_follows_its_filters(jobs, tasks, project):
    first = annotated_project(jobs, tasks, project)
    annotated_project(jobs, tasks, project, bodies=("Ibuprofen.",), spans=([],))
    import_all(tasks, project)

    _, data = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_JSON, generation_job=first.name)
    assert [t["text"] for t in json.loads(data)] == [BODY]
    _, everything = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_JSON)
    assert sorted(t["text"] for t in json.loads(everything)) == sorted([BODY, "Ibuprofen."])
    _, none = export_tasks(tasks, project, task_pb2.EXPORT_FORMAT_JSON, tag="no-such-tag")
    assert json.loads(none) == []
