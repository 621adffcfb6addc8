"""Reviewing staged texts: listing, filters, edits with etags, discard and restore."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import (
    append,
    create_job,
    fails_with,
    list_all_texts,
    row_counts,
    staged_job,
    text,
)

STAGED = task_pb2.STAGED_TEXT_STATE_STAGED
IMPORTED = task_pb2.STAGED_TEXT_STATE_IMPORTED
DISCARDED = task_pb2.STAGED_TEXT_STATE_DISCARDED


def update(tasks, staged: task_pb2.StagedText, *paths: str) -> task_pb2.StagedText:
    return tasks.UpdateStagedText(
        task_pb2.UpdateStagedTextRequest(staged_text=staged, update_mask=FieldMask(paths=list(paths)))
    ).staged_text


def test_listing_pages_newest_first_without_skipping_or_repeating_while_texts_arrive(jobs, tasks, project):
    staged_job(jobs, project, [f"old text {i}" for i in range(60)])
    arriving = create_job(jobs, project, text_count=40)

    seen: list[str] = []
    token = ""
    for batch in range(1, 100):
        page = tasks.ListStagedTexts(
            task_pb2.ListStagedTextsRequest(parent=f"projects/{project}", page_size=7, page_token=token)
        )
        seen.extend(t.name for t in page.staged_texts)
        token = page.next_page_token
        if not token:
            break
        if batch <= 8:  # newer texts land while the reader is between pages
            append(jobs, arriving.name, *(text(slot, f"new text {slot}") for slot in range((batch - 1) * 5, batch * 5)))

    everything = [t.name for t in list_all_texts(tasks, project)]
    assert len(seen) == len(set(seen)) == 60
    assert everything[everything.index(seen[0]) :] == seen


def test_listing_filters_by_job_state_tag_duplicate_and_query(jobs, tasks, project):
    tagged = staged_job(jobs, project, ["A 100% match_here", "Plain text", "plain TEXT!"], tags=["ner"])
    other = staged_job(jobs, project, ["Something else"])
    texts = {t.text: t for t in list_all_texts(tasks, project)}
    tasks.DiscardStagedTexts(
        task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=[texts["Plain text"].name])
    )

    def listed(**filter_fields) -> set[str]:
        return {t.text for t in list_all_texts(tasks, project, **filter_fields)}

    assert listed(generation_job=other) == {"Something else"}
    assert listed(generation_job=tagged) == {"A 100% match_here", "Plain text", "plain TEXT!"}
    assert listed(state=DISCARDED) == {"Plain text"}
    assert listed(state=STAGED) == {"A 100% match_here", "plain TEXT!", "Something else"}
    assert listed(tag="ner") == {"A 100% match_here", "Plain text", "plain TEXT!"}
    assert listed(tag="absent") == set()
    assert listed(duplicate=True) == {"plain TEXT!"}
    assert listed(duplicate=False) == {"A 100% match_here", "Plain text", "Something else"}
    assert listed(query="plain text") == {"Plain text", "plain TEXT!"}
    assert listed(query="100%") == {"A 100% match_here"}
    assert listed(query="100_") == set(), "_ is a literal, not a wildcard"
    assert listed(query="%") == {"A 100% match_here"}
    assert listed(tag="ner", state=STAGED, query="plain") == {"plain TEXT!"}


def test_a_page_token_works_only_with_the_query_it_came_from(jobs, tasks, project):
    staged_job(jobs, project, ["a", "b", "c"], tags=["x"])
    page = tasks.ListStagedTexts(task_pb2.ListStagedTextsRequest(parent=f"projects/{project}", page_size=1))

    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="page_token"):
        tasks.ListStagedTexts(
            task_pb2.ListStagedTextsRequest(
                parent=f"projects/{project}", page_token=page.next_page_token, filter=task_pb2.StagedTextFilter(tag="x")
            )
        )


def test_getting_a_text_returns_what_listing_returns(jobs, tasks, project):
    staged_job(jobs, project, ["only"])
    (listed,) = list_all_texts(tasks, project)
    assert tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=listed.name)).staged_text == listed


def test_editing_a_text_keeps_the_original_and_changes_the_etag(jobs, tasks, project):
    staged_job(jobs, project, ["Teh cat sat."], tags=["animals"])
    (before,) = list_all_texts(tasks, project)

    edited = update(tasks, task_pb2.StagedText(name=before.name, text="The cat sat.", etag=before.etag), "text")

    again = update(tasks, task_pb2.StagedText(name=before.name, text="The cat sat down.", etag=edited.etag), "text")

    assert edited.text == "The cat sat." and edited.original_text == "Teh cat sat."
    assert list(edited.tags) == ["animals"], "tags are not in the mask"
    assert edited.etag != before.etag
    assert again.original_text == "Teh cat sat.", "the original is the generated text, not the previous edit"
    assert tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=before.name)).staged_text == again


def test_editing_tags_strips_and_deduplicates_them_in_order(jobs, tasks, project):
    staged_job(jobs, project, ["tag me"])
    (before,) = list_all_texts(tasks, project)

    edited = update(tasks, task_pb2.StagedText(name=before.name, tags=[" b ", "a", "b", "ä-ö"], text="ignored"), "tags")

    assert list(edited.tags) == ["b", "a", "ä-ö"]
    assert edited.text == "tag me", "text is not in the mask"


def test_editing_with_a_stale_etag_is_aborted_and_changes_nothing(jobs, tasks, project):
    staged_job(jobs, project, ["original"])
    (before,) = list_all_texts(tasks, project)
    update(tasks, task_pb2.StagedText(name=before.name, text="first edit", etag=before.etag), "text")

    with fails_with(grpc.StatusCode.ABORTED, reason="ETAG_MISMATCH"):
        update(tasks, task_pb2.StagedText(name=before.name, text="second edit", etag=before.etag), "text")

    assert tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=before.name)).staged_text.text == "first edit"


def test_editing_without_an_etag_overwrites(jobs, tasks, project):
    staged_job(jobs, project, ["original"])
    (before,) = list_all_texts(tasks, project)
    update(tasks, task_pb2.StagedText(name=before.name, text="one"), "text")
    assert update(tasks, task_pb2.StagedText(name=before.name, text="two"), "*").text == "two"


def test_imported_texts_are_read_only(jobs, tasks, db, project):
    staged_job(jobs, project, ["to import", "stays"])
    imported, other = sorted(list_all_texts(tasks, project), key=lambda t: t.text != "to import")
    tasks.ImportStagedTexts(task_pb2.ImportStagedTextsRequest(parent=f"projects/{project}", names=[imported.name]))
    before = row_counts(db, project)

    with fails_with(grpc.StatusCode.FAILED_PRECONDITION, reason="STAGED_TEXT_IMPORTED"):
        update(tasks, task_pb2.StagedText(name=imported.name, text="edited"), "text")
    with fails_with(grpc.StatusCode.FAILED_PRECONDITION, reason="STAGED_TEXT_IMPORTED") as refused:
        tasks.DiscardStagedTexts(
            task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=[other.name, imported.name])
        )

    assert "names[1]" in refused.message
    assert row_counts(db, project) == before
    assert tasks.GetStagedText(task_pb2.GetStagedTextRequest(name=other.name)).staged_text.state == STAGED


def test_discarding_and_restoring_texts_changes_only_their_state(jobs, tasks, project):
    staged_job(jobs, project, ["one", "two", "three"])
    texts = list_all_texts(tasks, project)
    chosen = [texts[0].name, texts[2].name]

    discarded = tasks.DiscardStagedTexts(task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=chosen))
    again = tasks.DiscardStagedTexts(task_pb2.DiscardStagedTextsRequest(parent=f"projects/{project}", names=chosen))
    restored = tasks.RestoreStagedTexts(
        task_pb2.RestoreStagedTextsRequest(parent=f"projects/{project}", names=[texts[2].name])
    )

    assert [(t.name, t.state) for t in discarded.staged_texts] == [(n, DISCARDED) for n in chosen]
    assert [t.etag for t in again.staged_texts] == [t.etag for t in discarded.staged_texts], (
        "discarding twice changes nothing"
    )
    assert [(t.text, t.state) for t in restored.staged_texts] == [(texts[2].text, STAGED)]
    assert {t.text for t in list_all_texts(tasks, project, state=DISCARDED)} == {texts[0].text}


def test_discarding_an_unknown_text_discards_nothing(jobs, tasks, db, project):
    staged_job(jobs, project, ["kept"])
    (kept,) = list_all_texts(tasks, project)
    before = row_counts(db, project)

    with fails_with(grpc.StatusCode.NOT_FOUND) as refused:
        tasks.DiscardStagedTexts(
            task_pb2.DiscardStagedTextsRequest(
                parent=f"projects/{project}", names=[kept.name, f"projects/{project}/stagedTexts/{'a' * 32}"]
            )
        )

    assert "names[1]" in refused.message
    assert row_counts(db, project) == before
