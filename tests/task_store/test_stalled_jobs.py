"""ClaimStalledJobs: unfinished jobs without progress, each handed to one caller at a
time. The package's task store holds other tests' jobs too, so each test looks only at
its own. Time is not waited for: a test ages its jobs in the database, and the period is
long enough that no job stalls by itself while a test runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
from google.protobuf.duration_pb2 import Duration
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2

from tests.task_store.builders import append, create_job, fails_with, text

STALLED_FOR = timedelta(hours=1)


def claim(jobs, *, stalled_for: timedelta = STALLED_FOR, max_jobs: int = 1000) -> list[str]:
    duration = Duration()
    duration.FromTimedelta(stalled_for)
    reply = jobs.ClaimStalledJobs(job_store_pb2.ClaimStalledJobsRequest(stalled_for=duration, max_jobs=max_jobs))
    return [job.name for job in reply.generation_jobs]


def age(db, *names: str) -> None:
    """Move the jobs' last change and last claim one period (and a second) into the past."""
    by = STALLED_FOR + timedelta(seconds=1)
    aged = db.execute(
        "UPDATE generation_jobs SET update_time = update_time - %(by)s, recover_time = recover_time - %(by)s"
        " WHERE id = ANY(%(ids)s)",
        {"by": by, "ids": [name.rsplit("/", 1)[1] for name in names]},
    ).rowcount
    assert aged == len(names)


def test_a_job_without_progress_is_claimed_once_per_period(jobs, db, project):
    job = create_job(jobs, project)
    assert job.name not in claim(jobs)

    age(db, job.name)
    assert job.name in claim(jobs)
    assert job.name not in claim(jobs), "claimed again before another period passed"

    age(db, job.name)
    assert job.name in claim(jobs)


def test_a_running_job_that_makes_progress_is_not_claimed(jobs, db, project):
    job, control = create_job(jobs, project, text_count=3), create_job(jobs, project, text_count=3)
    age(db, job.name, control.name)
    append(jobs, job.name, text(0, "A first text."))
    claimed = claim(jobs)
    assert control.name in claimed
    assert job.name not in claimed


def test_finished_and_cancelled_jobs_are_never_claimed(jobs, generation, db, project):
    finished = create_job(jobs, project, text_count=1)
    append(jobs, finished.name, text(0, "The only text."))
    cancelled = create_job(jobs, project, text_count=2)
    generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=cancelled.name))
    unfinished = create_job(jobs, project, text_count=2)
    age(db, finished.name, cancelled.name, unfinished.name)
    claimed = claim(jobs)
    assert unfinished.name in claimed
    assert finished.name not in claimed
    assert cancelled.name not in claimed


def test_concurrent_callers_never_claim_the_same_job(jobs, db, project):
    mine = {create_job(jobs, project, text_count=1).name for _ in range(20)}
    age(db, *mine)

    def claim_all() -> list[str]:
        taken: list[str] = []
        while batch := claim(jobs, max_jobs=3):
            assert len(batch) <= 3
            taken.extend(batch)
        return taken

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [name for taken in pool.map(lambda _: claim_all(), range(4)) for name in taken]
    claimed_mine = [name for name in results if name in mine]
    assert sorted(claimed_mine) == sorted(mine), "each stalled job claimed exactly once"


def test_bad_claims_are_refused_naming_the_field(jobs):
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="stalled_for"):
        claim(jobs, stalled_for=timedelta(0))
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="max_jobs"):
        claim(jobs, max_jobs=0)
    with fails_with(grpc.StatusCode.INVALID_ARGUMENT, field="max_jobs"):
        claim(jobs, max_jobs=1001)
