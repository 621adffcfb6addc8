"""Entity spans (issue #14): a job's labels and their binding to prompt variables,
and the spans a worker appends with its texts. Offsets are code points."""

from __future__ import annotations

import grpc
import pytest
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import append, create_job, fails_with, list_all_texts, row_counts, text

LABEL = generation_pb2.EntityLabel
SPAN = task_pb2.Span
DRUG_VARIABLE = generation_pb2.PromptVariable(name="drug", values=["Ibuprofen", "Aspirin"])


def labelled_job(jobs, project: str, *, text_count: int = 2) -> generation_pb2.GenerationJob:
    return create_job(
        jobs,
        project,
        text_count=text_count,
        prompt="A note about {drug}.",
        variables=[DRUG_VARIABLE],
        labels=[LABEL(name="DRUG", description="a medicine"), LABEL(name="DOSE", description="an amount")],
        variable_labels={"drug": "DRUG"},
    )


def test_a_job_keeps_its_labels_and_hands_them_to_workers(jobs, generation, project):
    job = labelled_job(jobs, project)

    assert [(label.name, label.description) for label in job.labels] == [("DRUG", "a medicine"), ("DOSE", "an amount")]
    assert dict(job.variable_labels) == {"drug": "DRUG"}
    # Workers read their job from GetJobWork: the labels must reach them there.
    work = jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=job.name, first_slot=0, slot_count=2))
    assert list(work.generation_job.labels) == list(job.labels)
    assert dict(work.generation_job.variable_labels) == {"drug": "DRUG"}
    stored = generation.GetGenerationJob(generation_pb2.GetGenerationJobRequest(name=job.name)).generation_job
    assert list(stored.labels) == list(job.labels)


def test_a_job_without_labels_is_as_before(jobs, project):
    job = create_job(jobs, project)
    assert not job.labels and not job.variable_labels


BAD_LABELS = {
    "lower-case label": ({"labels": [LABEL(name="drug")]}, "generation_job.labels[0].name"),
    "label name with a space": ({"labels": [LABEL(name="DRUG NAME")]}, "generation_job.labels[0].name"),
    "repeated label": ({"labels": [LABEL(name="DRUG"), LABEL(name="DRUG")]}, "generation_job.labels[1].name"),
    "33 labels": ({"labels": [LABEL(name=f"L{i}") for i in range(33)]}, "generation_job.labels"),
    "long description": (
        {"labels": [LABEL(name="DRUG", description="x" * 201)]},
        "generation_job.labels[0].description",
    ),
    "description with a newline": (
        {"labels": [LABEL(name="DRUG", description="a\nb")]},
        "generation_job.labels[0].description",
    ),
    "variable bound to an unknown label": (
        {"labels": [LABEL(name="DOSE")], "variable_labels": {"drug": "DRUG"}},
        'generation_job.variable_labels["drug"]',
    ),
    "unknown variable bound": (
        {"labels": [LABEL(name="DRUG")], "variable_labels": {"dose": "DRUG"}},
        'generation_job.variable_labels["dose"]',
    ),
}


@pytest.mark.parametrize(("fields", "field"), BAD_LABELS.values(), ids=BAD_LABELS.keys())
def test_bad_labels_are_refused_naming_the_field_and_nothing_is_written(jobs, db, project, fields, field):
    before = row_counts(db, project)
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        create_job(jobs, project, prompt="A note about {drug}.", variables=[DRUG_VARIABLE], **fields)
    assert row_counts(db, project) == before
    # The positive control: the same job with valid labels is written.
    labelled_job(jobs, project)
    assert row_counts(db, project)["jobs"] == before["jobs"] + 1


def test_appended_spans_are_stored_with_their_text_and_dropped_ones_counted(jobs, generation, tasks, project):
    job = labelled_job(jobs, project)
    # Code points, not UTF-16 units: the emoji before "Aspirin" counts as one.
    body = "🙂 Aspirin 500 mg, then Ibuprofen."
    spans = [SPAN(start=2, end=9, label="DRUG", text="Aspirin"), SPAN(start=10, end=16, label="DOSE", text="500 mg")]
    append(jobs, job.name, text(0, body, spans=spans, dropped_spans=2), text(1, "Nothing to mark.", dropped_spans=1))

    by_slot = {t.lineage.slot: t for t in list_all_texts(tasks, project)}
    assert list(by_slot[0].spans) == spans
    assert all(body[s.start : s.end] == s.text for s in by_slot[0].spans)
    assert not by_slot[1].spans
    stored = generation.GetGenerationJob(generation_pb2.GetGenerationJobRequest(name=job.name)).generation_job
    assert stored.counts.dropped_spans == 3


BAD_SPANS = {
    "start past the text": (SPAN(start=40, end=41, label="DRUG", text="x"), "start"),
    "negative start": (SPAN(start=-1, end=3, label="DRUG", text="Asp"), "start"),
    "end past the text": (SPAN(start=8, end=99, label="DRUG", text="Ibuprofen."), "end"),
    "empty span": (SPAN(start=3, end=3, label="DRUG", text=""), "end"),
    "text that is not at the offsets": (SPAN(start=0, end=7, label="DRUG", text="Aspirin"), "text"),
    "label not of the job": (SPAN(start=10, end=19, label="CITY", text="Ibuprofen"), "label"),
    "malformed label": (SPAN(start=10, end=19, label="drug", text="Ibuprofen"), "label"),
}


@pytest.mark.parametrize(("span", "part"), BAD_SPANS.values(), ids=BAD_SPANS.keys())
def test_a_bad_span_from_a_worker_refuses_the_whole_append(jobs, db, project, span, part):
    job = labelled_job(jobs, project)
    good = SPAN(start=10, end=19, label="DRUG", text="Ibuprofen")
    before = row_counts(db, project)
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field=f"results[1].text.spans[1].{part}"):
        append(
            jobs,
            job.name,
            text(0, "A note on Ibuprofen.", spans=[good]),
            text(1, "A note on Ibuprofen.", spans=[good, span]),
        )
    assert row_counts(db, project) == before
    append(jobs, job.name, text(0, "A note on Ibuprofen.", spans=[good]))
    assert row_counts(db, project)["texts"] == before["texts"] + 1


def test_spans_on_a_job_without_labels_are_refused(jobs, db, project):
    job = create_job(jobs, project)
    before = row_counts(db, project)
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="results[0].text.spans[0].label"):
        append(jobs, job.name, text(0, "Paris.", spans=[SPAN(start=0, end=5, label="CITY", text="Paris")]))
    assert row_counts(db, project) == before


def reviewable_text(jobs, tasks, project: str) -> task_pb2.StagedText:
    job = labelled_job(jobs, project, text_count=1)
    body = "Take Aspirin 500 mg daily."
    spans = [SPAN(start=5, end=12, label="DRUG", text="Aspirin"), SPAN(start=13, end=19, label="DOSE", text="500 mg")]
    append(jobs, job.name, text(0, body, spans=spans))
    (staged,) = list_all_texts(tasks, project)
    return staged


def update(tasks, staged: task_pb2.StagedText, paths: list[str], **fields) -> task_pb2.StagedText:
    given = task_pb2.StagedText(name=staged.name, etag=staged.etag, **fields)
    return tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(staged_text=given, update_mask={"paths": paths})
    ).staged_text


def test_a_reviewer_replaces_the_spans(jobs, tasks, project):
    staged = reviewable_text(jobs, tasks, project)
    new_spans = [
        SPAN(start=20, end=25, label="DOSE", text="daily"),
        SPAN(start=5, end=19, label="DRUG", text="Aspirin 500 mg"),
    ]

    updated = update(tasks, staged, ["spans"], spans=new_spans)

    assert list(updated.spans) == new_spans  # overlapping and unordered spans are kept as given
    assert updated.text == staged.text and updated.etag != staged.etag


def test_an_edit_of_the_text_relocates_spans_and_flags_the_lost_ones(jobs, tasks, project):
    staged = reviewable_text(jobs, tasks, project)

    updated = update(tasks, staged, ["text"], text="Please take Aspirin 250 mg daily.")

    assert [(s.start, s.end, s.label, s.text, s.needs_review) for s in updated.spans] == [
        (12, 19, "DRUG", "Aspirin", False),
        (20, 26, "DOSE", "250 mg", True),
    ]
    # Setting the spans again is the review: the flag goes.
    fixed = update(
        tasks, updated, ["spans"], spans=[SPAN(start=20, end=26, label="DOSE", text="250 mg", needs_review=True)]
    )
    assert [(s.text, s.needs_review) for s in fixed.spans] == [("250 mg", False)]


def test_text_and_spans_in_one_update_check_the_spans_against_the_new_text(jobs, tasks, project):
    staged = reviewable_text(jobs, tasks, project)
    updated = update(
        tasks,
        staged,
        ["text", "spans"],
        text="Ibuprofen.",
        spans=[SPAN(start=0, end=9, label="DRUG", text="Ibuprofen")],
    )
    assert [(s.start, s.end, s.text) for s in updated.spans] == [(0, 9, "Ibuprofen")]


BAD_REVIEW_SPANS = {
    "end past the text": (
        [SPAN(start=5, end=12, label="DRUG", text="Aspirin"), SPAN(start=20, end=99, label="DOSE", text="x")],
        "staged_text.spans[1].end",
    ),
    "text not at the offsets": ([SPAN(start=0, end=4, label="DRUG", text="Aspi")], "staged_text.spans[0].text"),
    "label not of the job": ([SPAN(start=5, end=12, label="CITY", text="Aspirin")], "staged_text.spans[0].label"),
}


@pytest.mark.parametrize(("given", "field"), BAD_REVIEW_SPANS.values(), ids=BAD_REVIEW_SPANS.keys())
def test_bad_review_spans_are_refused_naming_the_field_and_nothing_changes(jobs, tasks, db, project, given, field):
    staged = reviewable_text(jobs, tasks, project)
    before = row_counts(db, project)
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        update(tasks, staged, ["spans"], spans=given)
    assert row_counts(db, project) == before
    assert list(tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=staged.name)).staged_text.spans) == list(
        staged.spans
    )


def test_spans_checked_against_the_edited_text_not_the_stored_one(jobs, tasks, db, project):
    staged = reviewable_text(jobs, tasks, project)
    before = row_counts(db, project)
    # Right for the stored text, outside the edited one.
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="staged_text.spans[0].start"):
        update(
            tasks, staged, ["text", "spans"], text="Short.", spans=[SPAN(start=13, end=19, label="DOSE", text="500 mg")]
        )
    assert row_counts(db, project) == before


def test_import_carries_reviewed_spans_into_the_task_predictions(jobs, tasks, project):
    job = labelled_job(jobs, project, text_count=3)
    aspirin = SPAN(start=5, end=12, label="DRUG", text="Aspirin")
    dose = SPAN(start=13, end=19, label="DOSE", text="500 mg")
    append(
        jobs,
        job.name,
        text(0, "Take Aspirin 500 mg daily.", spans=[aspirin, dose], model="gpt-4o-mini-2024-07-18"),
        text(1, "Take Aspirin 500 mg daily!", spans=[aspirin, dose], model="gpt-4o-mini-2024-07-18"),
        text(2, "No entity here.", model="gpt-4o-mini-2024-07-18"),
    )
    by_slot = {t.lineage.slot: t for t in list_all_texts(tasks, project)}
    # An edit that puts the dose in doubt: it is flagged and must not become a prediction.
    edited = update(tasks, by_slot[1], ["text"], text="Take Aspirin 250 mg daily!")
    assert [s.needs_review for s in edited.spans] == [False, True]

    tasks.ImportStagedTexts(task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", filter={}))

    imported = tasks.ListTasks(task_pb2.ListTasksRequest(parent=f"projects/{project}")).tasks
    by_source = {task.source_staged_text: task for task in imported}
    first = by_source[by_slot[0].name]
    assert "synthetic" in first.tags
    assert [(p.model_version, p.job) for p in first.predictions] == [("gpt-4o-mini-2024-07-18", job.name)]
    assert list(first.predictions[0].spans) == [aspirin, dose]
    assert [list(p.spans) for p in by_source[by_slot[1].name].predictions] == [[aspirin]]
    assert not by_source[by_slot[2].name].predictions
    got = tasks.GetTask(task_pb2.GetTaskRequest(name=first.name)).task
    assert got.predictions == first.predictions
