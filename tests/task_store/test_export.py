"""ExportStagedTexts: CSV, JSON and JSONL read back with the standard library and
compared field by field with what the API lists."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.task_store.export import CHUNK_SIZE, CSV_COLUMNS
from tests.task_store.builders import append, create_job, export_bytes, fails_with, list_all_texts, text

NASTY_TEXTS = [
    "Plain, with a comma",
    'She said "hello" and left',
    "Line one\nline two\r\nline three",
    "Emoji 👩‍🔬🎉 and a flag 🇩🇪",
    "مرحبا بالعالم، هذا نص عربي",
    "שלום עולם, זה טקסט בעברית",
    '=HYPERLINK("http://evil.example","click")',
    "+49 30 1234567",
    "-5 degrees tonight",
    "@channel look at this",
    "\tstarts with a tab",
    "\rstarts with a carriage return",
    "  leading spaces and a very long first line that certainly goes on for more than eighty characters total\nsecond",
]
NASTY_TAGS = ["a,b", 'q"t', "=tag", "עברית"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def expected_title(value: str) -> str:
    return next(line.strip() for line in value.splitlines() if line.strip())[:80]


def stage_nasty_texts(jobs, tasks, project) -> list[task_pb2.StagedText]:
    job = create_job(jobs, project, text_count=len(NASTY_TEXTS), tags=NASTY_TAGS, seed=-3)
    append(
        jobs,
        job.name,
        *(
            text(
                slot,
                body,
                model="m-1",
                prompt_tokens=slot,
                completion_tokens=2 * slot,
                finish_reason="stop",
                variables={"city": "Zürich", "quote": 'x"y'},
            )
            for slot, body in enumerate(NASTY_TEXTS)
        ),
    )
    staged = list(reversed(list_all_texts(tasks, project)))  # export runs oldest first
    assert [t.text for t in staged] == NASTY_TEXTS
    return staged


def test_csv_export_round_trips_nasty_texts_field_by_field(jobs, tasks, project):
    staged = stage_nasty_texts(jobs, tasks, project)

    chunks, data = export_bytes(tasks, project)

    assert chunks[0].content_type == "text/csv; charset=utf-8"
    assert chunks[0].file_name.startswith(f"{project}-staged-texts-") and chunks[0].file_name.endswith(".csv")
    assert data.startswith("\ufeff".encode())
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    header, *rows = list(reader)
    assert tuple(header) == CSV_COLUMNS
    assert len(rows) == len(staged)
    for row, expected in zip(rows, staged, strict=True):
        record = dict(zip(header, row, strict=True))
        lineage = expected.lineage
        assert record == {
            "name": expected.name,
            "text": csv_cell(expected.text),
            "title": csv_cell(expected_title(expected.text)),
            "tags": json.dumps([*NASTY_TAGS, "synthetic"], ensure_ascii=False, separators=(",", ":")),
            "synthetic": "true",
            "spans": "[]",
            "state": "STAGED",
            "duplicate": "false",
            "original_text": csv_cell(expected.original_text),
            "generation_job": lineage.generation_job,
            "provider": lineage.provider,
            "model": "m-1",
            "temperature": repr(lineage.temperature),
            "seed": "-3",
            "variables": record["variables"],
            "prompt_hash": lineage.prompt_hash,
            "prompt_tokens": str(lineage.prompt_tokens),
            "completion_tokens": str(lineage.completion_tokens),
            "finish_reason": "stop",
            "create_time": record["create_time"],  # compared as an instant below
        }
        assert json.loads(record["variables"]) == {"city": "Zürich", "quote": 'x"y'}
        assert _same_instant(record["create_time"], expected.create_time.ToJsonString())


def test_csv_cells_that_start_like_formulas_get_an_apostrophe(jobs, tasks, project):
    job = create_job(jobs, project, text_count=2, tags=["=cmd"])
    append(jobs, job.name, text(0, "=1+1"), text(1, "safe = fine"))

    _, data = export_bytes(tasks, project)

    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [(r["text"], r["title"], r["tags"]) for r in rows] == [
        ("'=1+1", "'=1+1", '["=cmd","synthetic"]'),
        ("safe = fine", "safe = fine", '["=cmd","synthetic"]'),
    ]


def test_csv_tags_holding_separators_read_back_as_the_same_tags(jobs, tasks, project):
    tags = ["=cmd|calc", "a,b", 'say "hi"', "plain"]
    job = create_job(jobs, project, text_count=1, tags=tags)
    append(jobs, job.name, text(0, "tagged"))

    _, data = export_bytes(tasks, project)

    [row] = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert json.loads(row["tags"]) == [*tags, "synthetic"]
    assert row["text"] == "tagged", "the control: the row is the one exported"


def test_csv_records_end_with_crlf_and_keep_line_breaks_inside_quotes(jobs, tasks, project):
    job = create_job(jobs, project, text_count=1)
    append(jobs, job.name, text(0, "a\nb"))

    _, data = export_bytes(tasks, project)

    body = data.decode("utf-8-sig")
    assert body.endswith("\r\n") and body.split("\r\n")[0] == ",".join(CSV_COLUMNS)
    assert ',"a\nb",a,' in body


def test_json_export_round_trips_in_the_platform_import_shape(jobs, tasks, project):
    staged = stage_nasty_texts(jobs, tasks, project)

    chunks, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_JSON)

    assert chunks[0].content_type == "application/json" and chunks[0].file_name.endswith(".json")
    objects = json.loads(data.decode("utf-8"))
    assert [_platform_fields(o) for o in objects] == [_expected_object(t) for t in staged]


def test_jsonl_export_has_one_span_format_object_per_line(jobs, tasks, project):
    staged = stage_nasty_texts(jobs, tasks, project)

    chunks, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_JSONL)

    assert chunks[0].content_type == "application/x-ndjson" and chunks[0].file_name.endswith(".jsonl")
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == ""
    expected = [_expected_object(t) for t in staged]
    assert [_platform_fields(json.loads(line)) for line in lines[:-1]] == [
        {
            "text": e["text"],
            "spans": [],
            "meta": {**e["meta"], "tags": e["tags"], "synthetic": True, "spans": None},
        }
        for e in expected
    ]


def test_export_follows_the_filter_and_exports_edits(jobs, tasks, project):
    job = create_job(jobs, project, text_count=2)
    append(jobs, job.name, text(0, "first"), text(1, "second"))
    first = next(t for t in list_all_texts(tasks, project) if t.text == "first")
    tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(
            staged_text=task_pb2.StagedText(name=first.name, text="first, edited", tags=["picked"]),
            update_mask=FieldMask(paths=["text", "tags"]),
        )
    )

    _, data = export_bytes(tasks, project, task_pb2.EXPORT_FORMAT_JSONL, tag="picked")

    (exported,) = [json.loads(line) for line in data.decode().splitlines()]
    assert (exported["text"], exported["meta"]["original_text"], exported["meta"]["tags"]) == (
        "first, edited",
        "first",
        ["picked", "synthetic"],
    )


def test_a_large_export_streams_in_chunks(jobs, tasks, project):
    job = create_job(jobs, project, text_count=3000)
    for start in range(0, 3000, 1000):
        append(jobs, job.name, *(text(slot, f"text {slot} " + "x" * 200) for slot in range(start, start + 1000)))

    chunks, data = export_bytes(tasks, project)

    assert len(chunks) > 5
    assert all(not c.content_type and not c.file_name for c in chunks[1:])
    assert max(len(c.data) for c in chunks) <= 4 * CHUNK_SIZE
    assert len(list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))) == 3001


def test_an_empty_export_still_names_its_file(tasks, project):
    for export_format, expected in (
        (task_pb2.EXPORT_FORMAT_CSV, ",".join(CSV_COLUMNS) + "\r\n"),
        (task_pb2.EXPORT_FORMAT_JSON, "[\n]\n"),
        (task_pb2.EXPORT_FORMAT_JSONL, ""),
        (task_pb2.EXPORT_FORMAT_LABEL_STUDIO, "[\n]\n"),
    ):
        chunks, data = export_bytes(tasks, project, export_format)
        assert chunks[0].file_name and data.decode("utf-8-sig") == expected


def test_an_unknown_export_format_is_invalid(tasks, project):
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="format"):
        export_bytes(tasks, project, 42)


def _same_instant(exported: str, api: str) -> bool:
    return datetime.fromisoformat(exported.replace("Z", "+00:00")) == datetime.fromisoformat(api.replace("Z", "+00:00"))


def _platform_fields(exported: dict) -> dict:
    meta = dict(exported["meta"])
    meta.pop("create_time")
    meta.pop("generate_time")
    meta.pop("latency_ms")
    meta.setdefault("spans", None)  # JSONL carries its spans outside the meta
    return {**exported, "meta": meta}


def _expected_object(staged: task_pb2.StagedText) -> dict:
    lineage = staged.lineage
    return {
        "text": staged.text,
        "title": expected_title(staged.text),
        "tags": [*staged.tags, "synthetic"],
        "synthetic": True,
        "meta": {
            "name": staged.name,
            "state": "STAGED",
            "duplicate": staged.duplicate,
            "original_text": staged.original_text,
            "generation_job": lineage.generation_job,
            "slot": lineage.slot,
            "provider": lineage.provider,
            "model": lineage.model,
            "temperature": lineage.temperature,
            "seed": lineage.seed,
            "variables": dict(lineage.variables),
            "prompt_hash": lineage.prompt_hash,
            "prompt_tokens": lineage.prompt_tokens,
            "completion_tokens": lineage.completion_tokens,
            "finish_reason": lineage.finish_reason,
            "spans": [],
        },
    }
