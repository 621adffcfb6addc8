"""Jobs and their slots: creation, work, results, completion, failure, cancellation."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from tests.task_store.builders import PROVIDER, append, create_job, fails_with, failure, list_all_texts, text

QUEUED = generation_pb2.GENERATION_JOB_STATE_QUEUED
RUNNING = generation_pb2.GENERATION_JOB_STATE_RUNNING
SUCCEEDED = generation_pb2.GENERATION_JOB_STATE_SUCCEEDED
FAILED = generation_pb2.GENERATION_JOB_STATE_FAILED
CANCELLED = generation_pb2.GENERATION_JOB_STATE_CANCELLED


def get_job(generation, name: str) -> generation_pb2.GenerationJob:
    return generation.GetGenerationJob(generation_pb2.GetGenerationJobRequest(name=name)).generation_job


def test_creating_a_job_stores_every_input_field_and_queues_it(jobs, generation, project):
    job = create_job(
        jobs,
        project,
        text_count=5,
        tags=["rare", " ner "],
        prompt="Describe {city}.",
        system_prompt="You write German.",
        temperature=1.3,
        model="gpt-4o-mini",
        max_output_tokens=200,
        seed=42,
        unique=True,
        variables=[generation_pb2.PromptVariable(name="city", values=["Köln", "Bonn"])],
    )

    stored = get_job(generation, job.name)
    assert stored == job
    assert job.name.startswith(f"projects/{project}/generationJobs/")
    assert job.state == QUEUED
    assert (job.prompt, job.system_prompt, job.temperature, job.text_count) == (
        "Describe {city}.",
        "You write German.",
        1.3,
        5,
    )
    assert (job.provider, job.model, job.max_output_tokens, job.seed, job.unique) == (
        PROVIDER,
        "gpt-4o-mini",
        200,
        42,
        True,
    )
    assert list(job.tags) == ["rare", "ner"]
    assert [(v.name, list(v.values)) for v in job.variables] == [("city", ["Köln", "Bonn"])]
    assert job.counts == generation_pb2.JobCounts(requested=5)
    assert job.prompt_hash == hashlib.sha256(b"You write German.\nDescribe {city}.").hexdigest()
    assert job.etag and job.HasField("create_time") and not job.HasField("start_time")


def test_a_job_without_a_seed_has_no_seed(jobs, project):
    assert not create_job(jobs, project).HasField("seed")
    assert create_job(jobs, project, seed=0).HasField("seed")


def test_creating_a_job_twice_with_the_same_request_id_returns_the_first_job(jobs, project):
    request = job_store_pb2.CreateJobRequest(
        parent=f"projects/{project}",
        request_id="req-1",
        generation_job=generation_pb2.GenerationJob(prompt="p", temperature=0.2, text_count=2, provider=PROVIDER),
    )
    first = jobs.CreateJob(request)
    second = jobs.CreateJob(request)

    assert first.created and not second.created
    assert second.generation_job.name == first.generation_job.name
    assert second.generation_job.request_id == "req-1"


def test_concurrent_creates_with_the_same_request_id_make_one_job(jobs, db, project):
    barrier = threading.Barrier(8)

    def create(_: int) -> job_store_pb2.CreateJobResponse:
        barrier.wait()
        return jobs.CreateJob(
            job_store_pb2.CreateJobRequest(
                parent=f"projects/{project}",
                request_id="same",
                generation_job=generation_pb2.GenerationJob(prompt="p", temperature=1, text_count=3, provider=PROVIDER),
            )
        )

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(create, range(8)))

    assert len({reply.generation_job.name for reply in replies}) == 1
    assert sum(reply.created for reply in replies) == 1
    assert db.execute("SELECT count(*) FROM generation_jobs WHERE project = %s", (project,)).fetchone()[0] == 1


def test_the_same_request_id_in_another_project_is_another_job(jobs, project):
    first = create_job(jobs, project, request_id="r")
    other = create_job(jobs, project + "-b", request_id="r")
    assert first.name != other.name


def test_jobs_without_a_request_id_are_never_merged(jobs, project):
    assert create_job(jobs, project).name != create_job(jobs, project).name


def test_marking_a_job_enqueued_reports_whether_it_already_was(jobs, project):
    job = create_job(jobs, project, request_id="enq")
    first = jobs.MarkJobEnqueued(job_store_pb2.MarkJobEnqueuedRequest(name=job.name))
    second = jobs.MarkJobEnqueued(job_store_pb2.MarkJobEnqueuedRequest(name=job.name))
    again = jobs.CreateJob(
        job_store_pb2.CreateJobRequest(parent=f"projects/{project}", request_id="enq", generation_job=job)
    )

    assert not first.already_enqueued and second.already_enqueued
    assert again.enqueued and not again.created


def test_getting_job_work_starts_the_job_and_lists_the_filled_slots_of_the_range(jobs, project):
    job = create_job(jobs, project, text_count=10)
    append(jobs, job.name, text(2, "two"), failure(4), text(7, "seven"))

    work = jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=job.name, first_slot=0, slot_count=5))

    assert list(work.filled_slots) == [2, 4]
    assert work.generation_job.state == RUNNING
    assert work.generation_job.HasField("start_time")


def test_the_first_work_request_moves_a_queued_job_to_running(jobs, project):
    job = create_job(jobs, project, text_count=4)
    work = jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=job.name, first_slot=0, slot_count=4))
    assert work.generation_job.state == RUNNING and list(work.filled_slots) == []
    assert work.generation_job.etag != job.etag


def test_a_slot_is_written_at_most_once(jobs, tasks, generation, project):
    job = create_job(jobs, project, text_count=3)

    first = append(jobs, job.name, text(0, "the first answer"))
    again = append(jobs, job.name, text(0, "a redelivered answer"), text(1, "new"))
    as_failure = append(jobs, job.name, failure(0))

    assert [(o.slot, o.written) for o in first.outcomes] == [(0, True)]
    assert [(o.slot, o.written) for o in again.outcomes] == [(0, False), (1, True)]
    assert [(o.slot, o.written) for o in as_failure.outcomes] == [(0, False)]
    assert [t.text for t in list_all_texts(tasks, project)] == ["new", "the first answer"]
    assert get_job(generation, job.name).counts == generation_pb2.JobCounts(requested=3, produced=2)


def test_concurrent_overlapping_appends_write_each_slot_exactly_once(jobs, generation, db, project):
    job = create_job(jobs, project, text_count=40)
    barrier = threading.Barrier(8)

    def deliver(worker: int) -> list[int]:
        # Worker w sends slots 4w … 4w+11: every slot but the first ones arrives up to three times.
        slots = [s for s in range(worker * 4, worker * 4 + 12) if s < 40]
        barrier.wait()
        reply = append(jobs, job.name, *(text(s, f"text {s} from worker {worker}") for s in slots))
        return [o.slot for o in reply.outcomes if o.written]

    with ThreadPoolExecutor(8) as pool:
        written = [slot for slots in pool.map(deliver, range(8)) for slot in slots]
    append(jobs, job.name, *(text(s, f"late text {s}") for s in range(40)))

    assert sorted(written) == list(range(40))
    assert db.execute(
        "SELECT count(*), count(DISTINCT slot) FROM staged_texts WHERE job_id = %s", (job.name.rsplit("/", 1)[1],)
    ).fetchone() == (40, 40)
    finished = get_job(generation, job.name)
    assert finished.state == SUCCEEDED and finished.counts.produced == 40


def test_a_job_succeeds_when_every_slot_holds_a_text(jobs, generation, project):
    job = create_job(jobs, project, text_count=2)
    middle = append(jobs, job.name, text(0, "one"))
    last = append(jobs, job.name, text(1, "two"))

    assert middle.state == RUNNING and last.state == SUCCEEDED
    finished = get_job(generation, job.name)
    assert finished.state == SUCCEEDED and finished.HasField("end_time") and not finished.HasField("error")


def test_a_job_with_failed_slots_ends_failed_with_its_most_common_reason(jobs, generation, project):
    job = create_job(jobs, project, text_count=4)
    reply = append(
        jobs,
        job.name,
        text(0, "fine"),
        failure(1, generation_pb2.FAILURE_REASON_RATE_LIMITED, "429 slow down"),
        failure(2, generation_pb2.FAILURE_REASON_CONTENT_FILTERED, "filtered"),
        failure(3, generation_pb2.FAILURE_REASON_RATE_LIMITED, "429 again"),
    )

    finished = get_job(generation, job.name)
    assert reply.state == FAILED and finished.state == FAILED
    assert finished.counts == generation_pb2.JobCounts(requested=4, produced=1, failed=3)
    assert finished.error == generation_pb2.JobError(
        reason=generation_pb2.FAILURE_REASON_RATE_LIMITED, message="429 slow down"
    )


def test_usage_counts_tokens_of_written_texts_refused_duplicates_and_extra_calls(jobs, generation, project):
    job = create_job(jobs, project, text_count=3)
    append(jobs, job.name, text(0, "Alpha", prompt_tokens=10, completion_tokens=5))
    append(
        jobs,
        job.name,
        text(1, "alpha!", prompt_tokens=10, completion_tokens=6, reject_duplicate=True),
        extra_prompt_tokens=7,
        extra_completion_tokens=3,
    )

    assert get_job(generation, job.name).usage == generation_pb2.TokenUsage(prompt_tokens=27, completion_tokens=14)


def test_failing_a_job_ends_it_and_later_results_are_not_written(jobs, generation, tasks, project):
    job = create_job(jobs, project, text_count=3)
    append(jobs, job.name, text(0, "kept"))
    error = generation_pb2.JobError(reason=generation_pb2.FAILURE_REASON_INVALID_KEY, message="401 invalid api key")

    failed = jobs.FailJob(job_store_pb2.FailJobRequest(name=job.name, error=error)).generation_job
    late = append(jobs, job.name, text(1, "too late"))

    assert failed.state == FAILED and failed.error == error and failed.HasField("end_time")
    assert late.state == FAILED and [o.written for o in late.outcomes] == [False]
    assert [t.text for t in list_all_texts(tasks, project)] == ["kept"]


def test_failing_an_ended_job_keeps_its_state(jobs, project):
    job = create_job(jobs, project, text_count=1)
    append(jobs, job.name, text(0, "done"))
    error = generation_pb2.JobError(reason=generation_pb2.FAILURE_REASON_PROVIDER_ERROR, message="late")

    reply = jobs.FailJob(job_store_pb2.FailJobRequest(name=job.name, error=error)).generation_job

    assert reply.state == SUCCEEDED and not reply.HasField("error")


def test_cancelling_a_job_keeps_its_texts_and_stops_further_results(jobs, generation, tasks, project):
    job = create_job(jobs, project, text_count=3)
    append(jobs, job.name, text(0, "staged before the cancel"))

    cancelled = generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=job.name)).generation_job
    late = append(jobs, job.name, text(1, "after the cancel"))
    work = jobs.GetJobWork(job_store_pb2.GetJobWorkRequest(name=job.name, first_slot=0, slot_count=3))

    assert cancelled.state == CANCELLED and cancelled.HasField("end_time")
    assert late.state == CANCELLED and not late.outcomes[0].written
    assert work.generation_job.state == CANCELLED
    assert [t.text for t in list_all_texts(tasks, project)] == ["staged before the cancel"]


def test_cancelling_twice_returns_the_cancelled_job(generation, jobs, project):
    job = create_job(jobs, project)
    first = generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=job.name)).generation_job
    second = generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=job.name)).generation_job
    assert first == second


def test_cancelling_a_finished_job_is_a_failed_precondition(generation, jobs, project):
    job = create_job(jobs, project, text_count=1)
    append(jobs, job.name, text(0, "done"))

    with fails_with(grpc.StatusCode.FAILED_PRECONDITION, reason="JOB_ALREADY_ENDED"):
        generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=job.name))


def test_duplicates_are_flagged_across_the_jobs_of_a_project_but_not_across_projects(jobs, generation, tasks, project):
    first = create_job(jobs, project, text_count=2)
    second = create_job(jobs, project, text_count=1)
    stranger = create_job(jobs, project + "-x", text_count=1)

    within = append(jobs, first.name, text(0, "The  café is OPEN."), text(1, "  the café is open  "))
    across = append(jobs, second.name, text(0, '"The café is open"'))
    elsewhere = append(jobs, stranger.name, text(0, "The café is open."))

    assert [(o.written, o.duplicate) for o in within.outcomes] == [(True, False), (True, True)]
    assert [(o.written, o.duplicate) for o in across.outcomes] == [(True, True)]
    assert [(o.written, o.duplicate) for o in elsewhere.outcomes] == [(True, False)]
    assert get_job(generation, first.name).counts.duplicates == 1
    flagged = list_all_texts(tasks, project, duplicate=True)
    assert {t.text for t in flagged} == {'"The café is open"', "  the café is open  "}


def test_refused_duplicates_are_not_written_but_are_counted(jobs, generation, tasks, project):
    job = create_job(jobs, project, text_count=2, unique=True)
    append(jobs, job.name, text(0, "\uff28\uff45\uff4c\uff4c\uff4f world"))  # full-width letters: NFKC folds them

    refused = append(jobs, job.name, text(1, "hello WORLD!", reject_duplicate=True))
    fresh = append(jobs, job.name, text(1, "a new sentence", reject_duplicate=True))

    assert [(o.written, o.duplicate) for o in refused.outcomes] == [(False, True)]
    assert [(o.written, o.duplicate) for o in fresh.outcomes] == [(True, False)]
    finished = get_job(generation, job.name)
    assert finished.counts == generation_pb2.JobCounts(requested=2, produced=2, duplicates=1)
    assert finished.state == SUCCEEDED
    assert len(list_all_texts(tasks, project)) == 2


def test_a_unique_job_fails_a_slot_with_reason_duplicate_when_the_last_attempt_repeats(
    jobs, generation, tasks, project
):
    job = create_job(jobs, project, text_count=2, unique=True)
    append(jobs, job.name, text(0, "Hello world"))

    last = append(jobs, job.name, text(1, "hello world.", reject_duplicate=False))

    assert [(o.written, o.duplicate) for o in last.outcomes] == [(True, True)]
    finished = get_job(generation, job.name)
    assert finished.counts == generation_pb2.JobCounts(requested=2, produced=1, failed=1, duplicates=1)
    assert finished.state == FAILED
    assert finished.error.reason == generation_pb2.FAILURE_REASON_DUPLICATE
    assert [t.text for t in list_all_texts(tasks, project)] == ["Hello world"]


def test_a_job_that_is_not_unique_keeps_a_duplicate_flagged(jobs, generation, tasks, project):
    job = create_job(jobs, project, text_count=2)
    append(jobs, job.name, text(0, "Hello world"))

    kept = append(jobs, job.name, text(1, "hello world.", reject_duplicate=False))

    assert [(o.written, o.duplicate) for o in kept.outcomes] == [(True, True)]
    finished = get_job(generation, job.name)
    assert (finished.state, finished.counts.produced, finished.counts.duplicates) == (SUCCEEDED, 2, 1)


def test_texts_get_the_job_tags_and_their_lineage(jobs, tasks, project):
    job = create_job(jobs, project, text_count=1, tags=["rare-entity"], seed=7, temperature=0.4, model="gpt-4o")
    generated = text(
        0,
        "Köln liegt am Rhein.",
        model="gpt-4o-2024-08-06",
        prompt_tokens=12,
        completion_tokens=9,
        finish_reason="stop",
        variables={"city": "Köln"},
    )
    generated.text.latency.FromMilliseconds(850)
    generated.text.generate_time.FromSeconds(1_700_000_000)
    append(jobs, job.name, generated)

    (staged,) = list_all_texts(tasks, project)
    lineage = staged.lineage
    assert list(staged.tags) == ["rare-entity"]
    assert staged.state == task_pb2.STAGED_TEXT_STATE_STAGED and staged.original_text == staged.text
    assert (lineage.generation_job, lineage.provider, lineage.model) == (job.name, PROVIDER, "gpt-4o-2024-08-06")
    assert (lineage.temperature, lineage.seed, lineage.prompt_hash, lineage.slot) == (0.4, 7, job.prompt_hash, 0)
    assert (lineage.prompt_tokens, lineage.completion_tokens, lineage.finish_reason) == (12, 9, "stop")
    assert dict(lineage.variables) == {"city": "Köln"}
    assert lineage.latency.ToMilliseconds() == 850
    assert lineage.generate_time.seconds == 1_700_000_000


def test_listing_jobs_pages_newest_first_and_filters_by_state(jobs, generation, project):
    created = [create_job(jobs, project, text_count=1) for _ in range(5)]
    append(jobs, created[1].name, text(0, "done"))

    names: list[str] = []
    token = ""
    while True:
        page = generation.ListGenerationJobs(
            generation_pb2.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=2, page_token=token)
        )
        names.extend(job.name for job in page.generation_jobs)
        token = page.next_page_token
        if not token:
            break
    succeeded = generation.ListGenerationJobs(
        generation_pb2.ListGenerationJobsRequest(parent=f"projects/{project}", state=SUCCEEDED)
    )

    assert names == [job.name for job in reversed(created)]
    assert [job.name for job in succeeded.generation_jobs] == [created[1].name]


def test_a_job_etag_changes_with_every_change(jobs, generation, project):
    job = create_job(jobs, project, text_count=2)
    etags = [job.etag]
    append(jobs, job.name, text(0, "a"))
    etags.append(get_job(generation, job.name).etag)
    append(jobs, job.name, text(1, "b"))
    etags.append(get_job(generation, job.name).etag)

    assert len(set(etags)) == 3
    assert get_job(generation, job.name).etag == etags[-1]
