"""AIP-155 in the task store: a request_id names one request; of the calls that carry
it, one at a time holds the right to enqueue the job's messages."""

from __future__ import annotations

import grpc
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2

from tests.task_store.builders import PROVIDER, fails_with


def _create(jobs, project: str, request_id: str, prompt: str = "Write a sentence.") -> job_store_pb2.CreateJobResponse:
    job = generation_pb2.GenerationJob(prompt=prompt, text_count=2, temperature=0.5, provider=PROVIDER)
    return jobs.CreateJob(
        job_store_pb2.CreateJobRequest(parent=f"projects/{project}", generation_job=job, request_id=request_id)
    )


def test_only_the_first_call_may_enqueue_until_its_claim_lapses(jobs, db, project):
    first = _create(jobs, project, "claim-me")
    retry = _create(jobs, project, "claim-me")

    assert (first.created, first.enqueued) == (True, False), "the creator enqueues"
    assert (retry.created, retry.enqueued) == (False, True), "a retry within the claim does not"
    # The creator died before enqueueing: once its claim is older than the lease, a retry takes it.
    db.execute(
        "UPDATE generation_jobs SET enqueue_claim_time = now() - interval '1 hour' WHERE project = %s", (project,)
    )
    late = _create(jobs, project, "claim-me")
    after = _create(jobs, project, "claim-me")
    assert (late.enqueued, after.enqueued) == (False, True)
    assert late.generation_job.name == first.generation_job.name


def test_a_marked_job_is_never_enqueued_again_by_a_retry(jobs, db, project):
    first = _create(jobs, project, "done")
    jobs.MarkJobEnqueued(job_store_pb2.MarkJobEnqueuedRequest(name=first.generation_job.name))
    db.execute(
        "UPDATE generation_jobs SET enqueue_claim_time = now() - interval '1 hour' WHERE project = %s", (project,)
    )
    assert _create(jobs, project, "done").enqueued


def test_the_same_request_id_with_another_request_is_already_exists(jobs, project):
    first = _create(jobs, project, "one-request")
    with fails_with(grpc.StatusCode.ALREADY_EXISTS, reason="REQUEST_ID_REUSED"):
        _create(jobs, project, "one-request", prompt="Write a poem.")
    assert _create(jobs, project, "one-request").generation_job.name == first.generation_job.name, "the control"
