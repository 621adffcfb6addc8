"""Bad input gets INVALID_ARGUMENT naming the field (or NOT_FOUND for names that
match nothing), and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import (
    PROVIDER,
    append,
    create_job,
    fails_with,
    list_all_texts,
    row_counts,
    staged_job,
    text,
)

UNKNOWN_ID = "0" * 32


@dataclass
class World:
    """A project with a running job (3 slots, 1 filled), a finished job with two
    staged texts, and a task imported from a third text."""

    project: str
    parent: str
    running_job: str
    texts: list[str]
    task: str
    jobs: object
    generation: object
    tasks: object

    def elsewhere(self, name: str) -> str:
        """The same name in another project."""
        return name.replace(f"projects/{self.project}/", "projects/somebody-else/")


@pytest.fixture
def world(jobs, generation, tasks, project) -> World:
    running = create_job(jobs, project, text_count=3)
    append(jobs, running.name, text(0, "running job text"))
    staged_job(jobs, project, ["first text", "second text"])
    imported_job = staged_job(jobs, project, ["imported text"])
    tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(
            parent=f"projects/{project}", filter=task_pb2.StagedTextFilter(generation_job=imported_job)
        )
    )
    texts = [t.name for t in list_all_texts(tasks, project, state=task_pb2.STAGED_TEXT_STATE_STAGED)]
    (task,) = tasks.ListTasks(task_pb2.ListTasksRequest(parent=f"projects/{project}")).tasks
    return World(project, f"projects/{project}", running.name, texts, task.name, jobs, generation, tasks)


def job_input(**fields) -> generation_pb2.GenerationJob:
    values = {"prompt": "Write.", "temperature": 0.5, "text_count": 2, "provider": PROVIDER}
    values.update(fields)
    return generation_pb2.GenerationJob(**values)


def create(w: World, request_id: str = "", parent: str | None = None, **fields):
    return w.jobs.CreateJob(
        job_store_pb2.CreateJobRequest(
            parent=w.parent if parent is None else parent, generation_job=job_input(**fields), request_id=request_id
        )
    )


def append_to(w: World, *results, **fields):
    return w.jobs.AppendResults(job_store_pb2.AppendResultsRequest(name=w.running_job, results=list(results), **fields))


def slot_text(slot: int, body: str = "fine", **fields) -> job_store_pb2.SlotResult:
    return job_store_pb2.SlotResult(slot=slot, text=job_store_pb2.GeneratedText(text=body, **fields))


def update_text(w: World, paths: list[str], **fields):
    return w.tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(
            staged_text=task_pb2.StagedText(**{"name": w.texts[0], **fields}), update_mask=FieldMask(paths=paths)
        )
    )


def list_texts(w: World, **fields):
    return w.tasks.ListStagedTexts(task_pb2.ListStagedTextsRequest(parent=w.parent, **fields))


INVALID: dict[str, tuple[str, Callable[[World], object]]] = {
    "a malformed parent": ("parent", lambda w: create(w, parent="projects/Upper_Case")),
    "a missing parent": ("parent", lambda w: create(w, parent="")),
    "an empty prompt": ("generation_job.prompt", lambda w: create(w, prompt="  ")),
    "a temperature above 2": ("generation_job.temperature", lambda w: create(w, temperature=2.5)),
    "no texts": ("generation_job.text_count", lambda w: create(w, text_count=0)),
    "no provider": ("generation_job.provider", lambda w: create(w, provider="")),
    "a provider that is not a name": ("generation_job.provider", lambda w: create(w, provider="openai")),
    "negative max tokens": ("generation_job.max_output_tokens", lambda w: create(w, max_output_tokens=-1)),
    "an empty job tag": ("generation_job.tags[1]", lambda w: create(w, tags=["ok", "  "])),
    "a 65 character job tag": ("generation_job.tags[0]", lambda w: create(w, tags=["x" * 65])),
    "a job tag with a control character": ("generation_job.tags[2]", lambda w: create(w, tags=["a", "b", "c\x07d"])),
    "33 job tags": ("generation_job.tags", lambda w: create(w, tags=[f"t{i}" for i in range(33)])),
    "a bad variable name": (
        "generation_job.variables[0].name",
        lambda w: create(w, variables=[generation_pb2.PromptVariable(name="1city", values=["x"])]),
    ),
    "a variable without values": (
        "generation_job.variables[0].values",
        lambda w: create(w, variables=[generation_pb2.PromptVariable(name="city")]),
    ),
    "a request id with a newline": ("request_id", lambda w: create(w, request_id="a\nb")),
    "a slot beyond the job": ("results[1].slot", lambda w: append_to(w, slot_text(1), slot_text(3))),
    "a negative slot": ("results[0].slot", lambda w: append_to(w, slot_text(-1))),
    "a slot twice in one batch": ("results[1].slot", lambda w: append_to(w, slot_text(1), slot_text(1, "again"))),
    "a result without outcome": ("results[0]", lambda w: append_to(w, job_store_pb2.SlotResult(slot=1))),
    "an empty generated text": ("results[0].text.text", lambda w: append_to(w, slot_text(1, " \n "))),
    "a generated text with NUL": ("results[0].text.text", lambda w: append_to(w, slot_text(1, "a\x00b"))),
    "negative token counts": (
        "results[1].text.prompt_tokens",
        lambda w: append_to(w, slot_text(1), slot_text(2, "x", prompt_tokens=-5)),
    ),
    "a failure without reason": (
        "results[0].failure.reason",
        lambda w: append_to(w, job_store_pb2.SlotResult(slot=1, failure=generation_pb2.JobError(message="?"))),
    ),
    "negative extra tokens": ("extra_prompt_tokens", lambda w: append_to(w, slot_text(1), extra_prompt_tokens=-1)),
    "a malformed job name": (
        "name",
        lambda w: w.jobs.AppendResults(
            job_store_pb2.AppendResultsRequest(name=w.running_job + "x", results=[slot_text(1)])
        ),
    ),
    "a negative first slot": (
        "first_slot",
        lambda w: w.jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=w.running_job, first_slot=-1, slot_count=1)),
    ),
    "no slots of work": (
        "slot_count",
        lambda w: w.jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=w.running_job, first_slot=0, slot_count=0)),
    ),
    "work beyond the job": (
        "slot_count",
        lambda w: w.jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=w.running_job, first_slot=1, slot_count=3)),
    ),
    "a job failure without error": (
        "error",
        lambda w: w.jobs.FailJob(job_store_pb2.FailJobRequest(name=w.running_job)),
    ),
    "a negative page size": ("page_size", lambda w: list_texts(w, page_size=-1)),
    "a page token that is not one": ("page_token", lambda w: list_texts(w, page_token="not-a-token")),
    "a forged page token": ("page_token", lambda w: list_texts(w, page_token="eyJzZXEiOiJ4In0")),
    "a filter job from another project": (
        "filter.generation_job",
        lambda w: list_texts(w, filter=task_pb2.StagedTextFilter(generation_job=w.elsewhere(w.running_job))),
    ),
    "an unknown filter state": ("filter.state", lambda w: list_texts(w, filter=task_pb2.StagedTextFilter(state=9))),
    "a 65 character filter tag": (
        "filter.tag",
        lambda w: list_texts(w, filter=task_pb2.StagedTextFilter(tag="t" * 65)),
    ),
    "an unknown job state": (
        "state",
        lambda w: w.generation.ListGenerationJobs(generation_pb2.ListGenerationJobsRequest(parent=w.parent, state=42)),
    ),
    "a task page token that is not one": (
        "page_token",
        lambda w: w.tasks.ListTasks(task_pb2.ListTasksRequest(parent=w.parent, page_token="%%%")),
    ),
    "a mask naming original_text": (
        "update_mask.paths[1]",
        lambda w: update_text(w, ["text", "original_text"], text="x"),
    ),
    "a malformed etag": ("staged_text.etag", lambda w: update_text(w, ["text"], text="x", etag="not-an-etag")),
    "an empty text": ("staged_text.text", lambda w: update_text(w, ["text"], text="   ")),
    "a text of 20,001 characters": ("staged_text.text", lambda w: update_text(w, ["text"], text="y" * 20_001)),
    "an empty tag": ("staged_text.tags[0]", lambda w: update_text(w, ["tags"], tags=["", "ok"])),
    "a 65 character tag": ("staged_text.tags[1]", lambda w: update_text(w, ["tags"], tags=["ok", "z" * 65])),
    "a tag with a control character": (
        "staged_text.tags[2]",
        lambda w: update_text(w, ["tags"], tags=["a", "b", "bad\ttag"]),
    ),
    "33 tags": ("staged_text.tags", lambda w: update_text(w, ["tags"], tags=[f"t{i}" for i in range(33)])),
    "a staged text name of another kind": (
        "staged_text.name",
        lambda w: update_text(w, ["text"], text="x", name=w.task),
    ),
    "a discard naming a text of another project": (
        "names[3]",
        lambda w: w.tasks.DiscardStagedTexts(
            task_pb2.DiscardStagedTextsRequest(
                parent=w.parent, names=[w.texts[0], w.texts[1], w.texts[2], w.elsewhere(w.texts[0])]
            )
        ),
    ),
    "a discard of nothing": (
        "names",
        lambda w: w.tasks.DiscardStagedTexts(task_pb2.DiscardStagedTextsRequest(parent=w.parent)),
    ),
    "a discard of 1001 texts": (
        "names",
        lambda w: w.tasks.DiscardStagedTexts(
            task_pb2.DiscardStagedTextsRequest(parent=w.parent, names=[w.texts[0]] * 1001)
        ),
    ),
    "a restore naming a text of another project": (
        "names[0]",
        lambda w: w.tasks.RestoreStagedTexts(
            task_pb2.RestoreStagedTextsRequest(parent=w.parent, names=[w.elsewhere(w.texts[0])])
        ),
    ),
    "an import with names and a filter": (
        "filter",
        lambda w: w.tasks.ImportStagedTexts(
            task_pb2.ImportStagedTextsRequest(parent=w.parent, names=[w.texts[0]], filter=task_pb2.StagedTextFilter())
        ),
    ),
    "an import of nothing": (
        "names",
        lambda w: w.tasks.ImportStagedTexts(task_pb2.ImportStagedTextsRequest(parent=w.parent)),
    ),
    "an import of discarded texts": (
        "filter.state",
        lambda w: w.tasks.ImportStagedTexts(
            task_pb2.ImportStagedTextsRequest(
                parent=w.parent, filter=task_pb2.StagedTextFilter(state=task_pb2.STAGED_TEXT_STATE_DISCARDED)
            )
        ),
    ),
    "an import naming a text of another project": (
        "names[1]",
        lambda w: w.tasks.ImportStagedTexts(
            task_pb2.ImportStagedTextsRequest(parent=w.parent, names=[w.texts[0], w.elsewhere(w.texts[1])])
        ),
    ),
    "a task mask naming text": (
        "update_mask.paths[0]",
        lambda w: w.tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(name=w.task, text="x", tags=["synthetic"]), update_mask=FieldMask(paths=["text"])
            )
        ),
    ),
    "a task tag with a control character": (
        "task.tags[1]",
        lambda w: w.tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(name=w.task, tags=["synthetic", "a\u2028b"]), update_mask=FieldMask(paths=["tags"])
            )
        ),
    ),
    "a tasks filter job from another project": (
        "generation_job",
        lambda w: w.tasks.ListTasks(
            task_pb2.ListTasksRequest(parent=w.parent, generation_job=w.elsewhere(w.running_job))
        ),
    ),
    "an unknown export format": (
        "format",
        lambda w: list(w.tasks.ExportStagedTexts(task_pb2.ExportStagedTextsRequest(parent=w.parent, format=7))),
    ),
    "an export filter tag with a control character": (
        "filter.tag",
        lambda w: list(
            w.tasks.ExportStagedTexts(
                task_pb2.ExportStagedTextsRequest(parent=w.parent, filter=task_pb2.StagedTextFilter(tag="\x1b[31m"))
            )
        ),
    ),
}


@pytest.mark.parametrize("field, call", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_names_the_field_and_writes_nothing(world, db, field, call):
    before = row_counts(db, world.project)

    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        call(world)

    assert row_counts(db, world.project) == before


NOT_FOUND: dict[str, Callable[[World], object]] = {
    "get an unknown job": lambda w: w.generation.GetGenerationJob(
        generation_pb2.GetGenerationJobRequest(name=f"{w.parent}/generationJobs/{UNKNOWN_ID}")
    ),
    "append to an unknown job": lambda w: w.jobs.AppendResults(
        job_store_pb2.AppendResultsRequest(name=f"{w.parent}/generationJobs/{UNKNOWN_ID}", results=[slot_text(0)])
    ),
    "a known job asked for in another project": lambda w: w.generation.CancelGenerationJob(
        generation_pb2.CancelGenerationJobRequest(name=w.elsewhere(w.running_job))
    ),
    "fail an unknown job": lambda w: w.jobs.FailJob(
        job_store_pb2.FailJobRequest(
            name=f"{w.parent}/generationJobs/{UNKNOWN_ID}",
            error=generation_pb2.JobError(reason=generation_pb2.FAILURE_REASON_INVALID_KEY),
        )
    ),
    "mark an unknown job enqueued": lambda w: w.jobs.MarkJobEnqueued(
        job_store_pb2.MarkJobEnqueuedRequest(name=f"{w.parent}/generationJobs/{UNKNOWN_ID}")
    ),
    "get an unknown staged text": lambda w: w.tasks.GetStagedText(
        task_pb2.GetStagedTextRequest(name=f"{w.parent}/stagedTexts/{UNKNOWN_ID}")
    ),
    "edit an unknown staged text": lambda w: update_text(
        w, ["text"], text="x", name=f"{w.parent}/stagedTexts/{UNKNOWN_ID}"
    ),
    "import an unknown staged text": lambda w: w.tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(parent=w.parent, names=[w.texts[0], f"{w.parent}/stagedTexts/{UNKNOWN_ID}"])
    ),
    "get an unknown task": lambda w: w.tasks.GetTask(task_pb2.GetTaskRequest(name=f"{w.parent}/tasks/{UNKNOWN_ID}")),
}


@pytest.mark.parametrize("call", NOT_FOUND.values(), ids=NOT_FOUND.keys())
def test_names_that_match_nothing_are_not_found_and_write_nothing(world, db, call):
    before = row_counts(db, world.project)

    with fails_with(grpc.StatusCode.NOT_FOUND, reason="NOT_FOUND"):
        call(world)

    assert row_counts(db, world.project) == before


def test_a_violation_says_what_is_wrong(world):
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="staged_text.tags[2]") as refused:
        update_text(world, ["tags"], tags=["a", "b", "c\x00"])
    assert refused.message.endswith("staged_text.tags[2]: must not contain control characters")
