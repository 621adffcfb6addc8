"""AIP-134 (an omitted update mask means every populated field) and AIP-158 (a page
size above the maximum is capped, not refused) in the task store."""

from __future__ import annotations

from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.vocabulary.page_tokens import MAX_PAGE_SIZE
from tests.task_store.builders import create_job, list_all_texts, staged_job


def test_an_update_without_a_mask_changes_the_populated_fields_and_leaves_empty_ones(jobs, tasks, project):
    staged_job(jobs, project, ["original"], tags=["keep-me"])
    (before,) = list_all_texts(tasks, project)

    edited = tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(staged_text=task_pb2.StagedText(name=before.name, text="edited"))
    ).staged_text
    retagged = tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(staged_text=task_pb2.StagedText(name=before.name, tags=["new"]))
    ).staged_text

    assert (edited.text, list(edited.tags)) == ("edited", ["keep-me"]), "empty tags are not populated: kept"
    assert (retagged.text, list(retagged.tags)) == ("edited", ["new"]), "an empty text is not populated: kept"


def test_an_update_without_a_mask_or_any_populated_field_changes_nothing(jobs, tasks, project):
    staged_job(jobs, project, ["original"], tags=["keep-me"])
    (before,) = list_all_texts(tasks, project)

    same = tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(staged_text=task_pb2.StagedText(name=before.name))
    ).staged_text

    assert (same.text, list(same.tags), same.etag) == ("original", ["keep-me"], before.etag)


def test_a_page_size_above_the_maximum_is_capped_to_it(jobs, generation, project):
    for _ in range(3):
        create_job(jobs, project, text_count=1)

    capped = generation.ListGenerationJobs(
        generation_pb2.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=MAX_PAGE_SIZE * 50)
    )
    paged = generation.ListGenerationJobs(
        generation_pb2.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=2)
    )

    assert len(capped.generation_jobs) == 3 and not capped.next_page_token
    assert len(paged.generation_jobs) == 2 and paged.next_page_token, "the control: a small size still pages"
