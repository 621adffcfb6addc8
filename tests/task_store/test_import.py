"""Importing staged texts as tasks, and the tasks themselves."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import fails_with, list_all_texts, row_counts, staged_job

IMPORTED = task_pb2.STAGED_TEXT_STATE_IMPORTED


def import_job(tasks, project: str, job: str) -> task_pb2.ImportStagedTextsResponse:
    return tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(
            parent=f"projects/{project}", filter=task_pb2.StagedTextFilter(generation_job=job)
        )
    )


def list_tasks(tasks, project: str, **fields) -> list[task_pb2.Task]:
    return list(tasks.ListTasks(task_pb2.ListTasksRequest(parent=f"projects/{project}", **fields)).tasks)


def test_importing_by_names_creates_tasks_with_the_text_tags_plus_synthetic(jobs, tasks, project):
    job = staged_job(jobs, project, ["Alpha", "Beta", "Gamma"], tags=["ner", "synthetic-ish"])
    texts = {t.text: t for t in list_all_texts(tasks, project)}

    reply = tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(
            parent=f"projects/{project}", names=[texts["Alpha"].name, texts["Gamma"].name]
        )
    )

    assert (reply.created_count, reply.already_imported_count) == (2, 0)
    created = {task.text: task for task in list_tasks(tasks, project)}
    assert set(created) == {"Alpha", "Gamma"}
    for body, task in created.items():
        assert list(task.tags) == ["ner", "synthetic-ish", "synthetic"]
        assert task.source_staged_text == texts[body].name and task.generation_job == job
        assert task.name.startswith(f"projects/{project}/tasks/") and task.etag
        staged = tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=texts[body].name)).staged_text
        assert staged.state == IMPORTED and staged.task == task.name
        assert tasks.GetTask(task_pb2.GetTaskRequest(name=task.name)).task == task


def test_a_text_already_tagged_synthetic_gets_the_tag_once(jobs, tasks, project):
    job = staged_job(jobs, project, ["tagged"], tags=["synthetic", "x"])
    import_job(tasks, project, job)
    assert [list(task.tags) for task in list_tasks(tasks, project)] == [["synthetic", "x"]]


def test_importing_an_edited_text_imports_the_edit(jobs, tasks, project):
    staged_job(jobs, project, ["Teh typo"])
    (staged,) = list_all_texts(tasks, project)
    tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(
            staged_text=task_pb2.StagedText(name=staged.name, text="The fix"), update_mask=FieldMask(paths=["text"])
        )
    )
    tasks.ImportStagedTexts(task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", names=[staged.name]))
    assert [task.text for task in list_tasks(tasks, project)] == ["The fix"]


def test_importing_twice_creates_each_task_once(jobs, tasks, project):
    job = staged_job(jobs, project, ["one", "two"])
    first = import_job(tasks, project, job)
    second = import_job(tasks, project, job)
    by_name = tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(
            parent=f"projects/{project}", names=[t.name for t in list_all_texts(tasks, project)]
        )
    )

    assert (first.created_count, first.already_imported_count) == (2, 0)
    assert (second.created_count, second.already_imported_count) == (0, 2)
    assert (by_name.created_count, by_name.already_imported_count) == (0, 2)
    assert len(list_tasks(tasks, project)) == 2


def test_importing_staged_texts_by_state_twice_counts_the_first_import(jobs, tasks, project):
    staged_job(jobs, project, ["one", "two"])
    request = task_pb2.ImportStagedTextsRequest(
        parent=f"projects/{project}", filter=task_pb2.StagedTextFilter(state=task_pb2.STAGED_TEXT_STATE_STAGED)
    )

    first, second = tasks.ImportStagedTexts(request), tasks.ImportStagedTexts(request)

    assert (first.created_count, first.already_imported_count) == (2, 0)
    assert (second.created_count, second.already_imported_count) == (0, 2)


def test_eight_concurrent_imports_of_a_job_create_each_task_once(jobs, tasks, db, project):
    job = staged_job(jobs, project, [f"text number {i}" for i in range(300)])
    barrier = threading.Barrier(8)

    def run(_: int) -> task_pb2.ImportStagedTextsResponse:
        barrier.wait()
        return import_job(tasks, project, job)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(run, range(8)))

    assert sum(reply.created_count for reply in replies) == 300
    assert all(reply.created_count + reply.already_imported_count == 300 for reply in replies)
    assert db.execute(
        "SELECT count(*), count(DISTINCT staged_text_id) FROM tasks WHERE project = %s", (project,)
    ).fetchone() == (300, 300)
    assert (
        db.execute(
            "SELECT count(*) FROM staged_texts WHERE project = %s AND state = 'IMPORTED' AND task_id IS NOT NULL",
            (project,),
        ).fetchone()[0]
        == 300
    )


def test_importing_an_empty_filter_imports_every_staged_text_but_not_discarded_ones(jobs, tasks, project):
    staged_job(jobs, project, ["a", "b"])
    staged_job(jobs, project, ["c"])
    discarded = next(t for t in list_all_texts(tasks, project) if t.text == "b")
    tasks.DiscardStagedTexts(task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=[discarded.name]))

    reply = tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", filter=task_pb2.StagedTextFilter())
    )

    assert reply.created_count == 2
    assert {task.text for task in list_tasks(tasks, project)} == {"a", "c"}


def test_importing_a_discarded_text_by_name_is_refused_and_imports_nothing(jobs, tasks, db, project):
    staged_job(jobs, project, ["fine", "discarded"])
    fine, discarded = sorted(list_all_texts(tasks, project), key=lambda t: t.text != "fine")
    tasks.DiscardStagedTexts(task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=[discarded.name]))
    before = row_counts(db, project)

    with fails_with(grpc.StatusCode.FAILED_PRECONDITION, reason="STAGED_TEXT_DISCARDED") as refused:
        tasks.ImportStagedTexts(
            task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", names=[fine.name, discarded.name])
        )

    assert "names[1]" in refused.message
    assert row_counts(db, project) == before


def test_listing_tasks_filters_by_tag_and_job_and_pages(jobs, tasks, project):
    first = staged_job(jobs, project, ["f1", "f2", "f3"], tags=["alpha"])
    second = staged_job(jobs, project, ["s1"], tags=["beta"])
    import_job(tasks, project, first)
    import_job(tasks, project, second)

    page = tasks.ListTasks(task_pb2.ListTasksRequest(parent=f"projects/{project}", page_size=3))
    rest = tasks.ListTasks(
        task_pb2.ListTasksRequest(parent=f"projects/{project}", page_size=3, page_token=page.next_page_token)
    )

    assert [t.text for t in page.tasks] + [t.text for t in rest.tasks] == ["s1", "f3", "f2", "f1"]
    assert not rest.next_page_token
    assert {t.text for t in list_tasks(tasks, project, tag="alpha")} == {"f1", "f2", "f3"}
    assert {t.text for t in list_tasks(tasks, project, tag="synthetic")} == {"f1", "f2", "f3", "s1"}
    assert [t.text for t in list_tasks(tasks, project, generation_job=second)] == ["s1"]


def test_task_tags_change_when_synthetic_stays(jobs, tasks, project):
    job = staged_job(jobs, project, ["t"], tags=["old"])
    import_job(tasks, project, job)
    (task,) = list_tasks(tasks, project)

    updated = tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(
            task=task_pb2.Task(name=task.name, tags=["new", "synthetic", "new"], etag=task.etag),
            update_mask=FieldMask(paths=["tags"]),
        )
    ).task

    assert list(updated.tags) == ["new", "synthetic"] and updated.etag != task.etag
    with fails_with(grpc.StatusCode.ABORTED):
        tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(name=task.name, tags=["synthetic"], etag=task.etag),
                update_mask=FieldMask(paths=["tags"]),
            )
        )


def test_synthetic_cannot_be_removed_from_a_task_made_from_a_generated_text(jobs, tasks, db, project):
    job = staged_job(jobs, project, ["t"], tags=["keep"])
    import_job(tasks, project, job)
    (task,) = list_tasks(tasks, project)
    before = row_counts(db, project)

    with fails_with(grpc.StatusCode.FAILED_PRECONDITION, reason="SYNTHETIC_TAG_REQUIRED") as refused:
        tasks.UpdateTask(
            task_pb2.UpdateTaskRequest(
                task=task_pb2.Task(name=task.name, tags=["keep"]), update_mask=FieldMask(paths=["tags"])
            )
        )

    assert "task.tags" in refused.message
    assert row_counts(db, project) == before
    assert list(tasks.GetTask(task_pb2.GetTaskRequest(name=task.name)).task.tags) == ["keep", "synthetic"]
