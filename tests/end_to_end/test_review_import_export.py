"""The whole flow through the gateway with a project token, as the annotation platform
would call it: generate → watch → list → edit → tag → discard one → import the rest →
tasks carry their tags plus `synthetic` → export CSV and JSON, parsed back with the csv
and json modules and compared field by field."""

from __future__ import annotations

import csv
import io
import json

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from tests.jobs_harness import log_dir_for, started_workers
from tests.rich_status import error_info_reason

TEXTS = 6
DRUGS = ["aspirin", "ibuprofen", "metformin"]


@pytest.fixture(scope="module", autouse=True)
def workers(stack, suite_log, request):
    with started_workers(stack, log_dir_for(suite_log, request), count=1) as running:
        yield running


def export(clients, parent: str, job: str, export_format: int) -> tuple[bytes, list[task_pb.ExportStagedTextsResponse]]:
    chunks = list(
        clients.tasks.ExportStagedTexts(
            task_pb.ExportStagedTextsRequest(
                parent=parent, filter=task_pb.StagedTextFilter(generation_job=job), format=export_format
            ),
            timeout=30,
        )
    )
    return b"".join(c.data for c in chunks), chunks


def test_generate_review_import_and_export_through_the_gateway(stack, generation):
    project = generation.new_project()
    parent = f"projects/{project}"
    generation.provider(project, "compatible")
    member = stack.clients(
        stack.admin()
        .tokens.CreateToken(
            token_pb.CreateTokenRequest(token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[parent]))
        )
        .secret
    )

    # Generate, and watch the job to its end.
    job = member.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(
            parent=parent,
            request_id="flow-1",
            generation_job=gen_pb.GenerationJob(
                prompt="Write a clinical sentence mentioning {drug}.",
                variables=[gen_pb.PromptVariable(name="drug", values=DRUGS)],
                text_count=TEXTS,
                temperature=0.8,
                tags=["batch-1"],
            ),
        ),
        timeout=10,
    ).generation_job
    assert job.state == gen_pb.GENERATION_JOB_STATE_QUEUED
    events = list(member.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name), timeout=60))
    produced = [e.generation_job.counts.produced for e in events]
    assert produced == sorted(produced), "snapshots never go backwards"
    assert events[-1].generation_job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert all(e.generation_job.state != gen_pb.GENERATION_JOB_STATE_SUCCEEDED for e in events[:-1])
    streamed = [e.staged_text.name for e in events if e.staged_text.name]
    assert len(streamed) == len(set(streamed)) == TEXTS

    # List: exactly N texts, newest first, tagged and with their lineage.
    staged = member.tasks.ListStagedTexts(
        task_pb.ListStagedTextsRequest(parent=parent, filter=task_pb.StagedTextFilter(generation_job=job.name)),
        timeout=10,
    ).staged_texts
    assert sorted(t.name for t in staged) == sorted(streamed)
    assert [t.create_time.ToNanoseconds() for t in staged] == sorted(
        (t.create_time.ToNanoseconds() for t in staged), reverse=True
    )
    assert all(list(t.tags) == ["batch-1"] and t.lineage.generation_job == job.name for t in staged)
    assert sorted(t.lineage.variables["drug"] for t in staged) == sorted(DRUGS * 2)

    # Edit one text and its tags; the original stays beside it; a stale etag is refused.
    edited, discarded = staged[0], staged[1]
    change = task_pb.StagedText(
        name=edited.name, etag=edited.etag, text='Edited, with a comma: and "quotes".', tags=["batch-1", "reviewed"]
    )
    after_edit = member.tasks.UpdateStagedText(
        task_pb.UpdateStagedTextRequest(staged_text=change, update_mask=FieldMask(paths=["text", "tags"])), timeout=10
    ).staged_text
    assert after_edit.text == change.text and after_edit.original_text == edited.text
    with pytest.raises(grpc.RpcError) as raised:
        member.tasks.UpdateStagedText(
            task_pb.UpdateStagedTextRequest(staged_text=change, update_mask=FieldMask(paths=["text"])), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.ABORTED

    # Discard one, import the rest (every STAGED text of the job), twice.
    member.tasks.DiscardStagedTexts(
        task_pb.DiscardStagedTextsRequest(parent=parent, names=[discarded.name]), timeout=10
    )
    job_filter = task_pb.StagedTextFilter(generation_job=job.name, state=task_pb.STAGED_TEXT_STATE_STAGED)
    imported = member.tasks.ImportStagedTexts(
        task_pb.ImportStagedTextsRequest(parent=parent, filter=job_filter), timeout=10
    )
    assert (imported.created_count, imported.already_imported_count) == (TEXTS - 1, 0)
    kept = [t.name for t in staged if t.name != discarded.name]
    again = member.tasks.ImportStagedTexts(task_pb.ImportStagedTextsRequest(parent=parent, names=kept), timeout=10)
    assert (again.created_count, again.already_imported_count) == (0, TEXTS - 1)

    # Tasks carry the text's tags plus `synthetic`, which cannot be removed.
    tasks = member.tasks.ListTasks(task_pb.ListTasksRequest(parent=parent, generation_job=job.name), timeout=10).tasks
    assert sorted(t.source_staged_text for t in tasks) == sorted(kept)
    by_source = {t.source_staged_text: t for t in tasks}
    assert set(by_source[edited.name].tags) == {"batch-1", "reviewed", "synthetic"}
    assert by_source[edited.name].text == change.text
    assert all("synthetic" in t.tags for t in tasks)
    stripped = task_pb.Task(name=by_source[edited.name].name, tags=["batch-1"])
    with pytest.raises(grpc.RpcError) as raised:
        member.tasks.UpdateTask(
            task_pb.UpdateTaskRequest(task=stripped, update_mask=FieldMask(paths=["tags"])), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_reason(raised.value) == "SYNTHETIC_TAG_REQUIRED"

    # Imported texts are read-only.
    current = member.tasks.GetStagedText(task_pb.GetStagedTextRequest(name=edited.name), timeout=10).staged_text
    assert current.state == task_pb.STAGED_TEXT_STATE_IMPORTED and current.task == by_source[edited.name].name
    with pytest.raises(grpc.RpcError) as raised:
        member.tasks.UpdateStagedText(
            task_pb.UpdateStagedTextRequest(
                staged_text=task_pb.StagedText(name=edited.name, etag=current.etag, text="late edit"),
                update_mask=FieldMask(paths=["text"]),
            ),
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Export: CSV and JSON, parsed back and compared field by field with the API's view.
    final = {
        t.name: t
        for t in member.tasks.ListStagedTexts(
            task_pb.ListStagedTextsRequest(parent=parent, filter=task_pb.StagedTextFilter(generation_job=job.name)),
            timeout=10,
        ).staged_texts
    }
    raw_csv, chunks = export(member, parent, job.name, task_pb.EXPORT_FORMAT_CSV)
    assert chunks[0].content_type.startswith("text/csv") and chunks[0].file_name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(raw_csv.decode("utf-8-sig"), newline="")))
    assert {r["name"] for r in rows} == set(final)
    for row in rows:
        text = final[row["name"]]
        assert row["text"] == text.text
        assert row["original_text"] in ("", text.original_text)
        # Every exported staged text is generated: the export adds the tag import gives.
        own = list(text.tags)
        assert json.loads(row["tags"]) == (own if "synthetic" in own else [*own, "synthetic"])
        assert row["synthetic"] == "true"
        assert row["state"] == task_pb.StagedTextState.Name(text.state).removeprefix("STAGED_TEXT_STATE_")
        assert row["generation_job"] == job.name
        assert row["provider"] == text.lineage.provider
        assert row["model"] == text.lineage.model
        assert float(row["temperature"]) == pytest.approx(0.8)
        assert json.loads(row["variables"]) == dict(text.lineage.variables)
        assert int(row["completion_tokens"]) == text.lineage.completion_tokens

    raw_json, chunks = export(member, parent, job.name, task_pb.EXPORT_FORMAT_JSON)
    assert chunks[0].content_type.startswith("application/json")
    items = json.loads(raw_json.decode("utf-8"))
    assert sorted(i["text"] for i in items) == sorted(t.text for t in final.values())
    assert all(i["title"] and set(i["tags"]) >= {"batch-1", "synthetic"} and i["synthetic"] for i in items)
