"""The job state machine on its own, without a database: which moves a job can make,
the state work and results lead to, and which cancellations are refused."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.runtime.errors import FailedPrecondition
from services.task_store import job_states
from services.task_store.records import Job, JobState
from services.vocabulary.reasons import Reason

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = JobState
ALLOWED = {
    (QUEUED, RUNNING),
    (QUEUED, SUCCEEDED),
    (QUEUED, FAILED),
    (QUEUED, CANCELLED),
    (RUNNING, SUCCEEDED),
    (RUNNING, FAILED),
    (RUNNING, CANCELLED),
}
MIGRATIONS = Path(job_states.__file__).parent / "migrations"


def _job(state: JobState) -> Job:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Job(
        id="0123456789abcdef0123456789abcdef",
        seq=1,
        project="demo",
        request_id="",
        prompt="Write a sentence.",
        system_prompt="",
        temperature=1.0,
        text_count=3,
        provider="fake",
        model="model",
        max_output_tokens=0,
        seed=None,
        tags=(),
        variables=(),
        unique=False,
        prompt_hash="",
        state=state,
        produced=0,
        failed=0,
        duplicates=0,
        prompt_tokens=0,
        completion_tokens=0,
        error=None,
        enqueued=True,
        version=1,
        create_time=moment,
        start_time=None,
        end_time=None,
        update_time=moment,
    )


def test_every_state_is_either_active_or_terminal():
    assert set(job_states.ACTIVE) | job_states.TERMINAL == set(JobState)
    assert not set(job_states.ACTIVE) & job_states.TERMINAL
    assert set(job_states.TRANSITIONS) == set(JobState)


@pytest.mark.parametrize("current, target", list(itertools.product(JobState, repeat=2)))
def test_a_job_makes_only_the_listed_moves(current, target):
    assert job_states.may_move(current, target) == ((current, target) in ALLOWED)


def test_ended_jobs_never_move_and_no_job_goes_back_to_the_queue():
    assert any(job_states.may_move(QUEUED, target) for target in JobState)  # the check can say yes
    for state in job_states.TERMINAL:
        assert not any(job_states.may_move(state, target) for target in JobState), state
    assert not any(job_states.may_move(state, QUEUED) for state in JobState)


def test_asking_for_work_starts_a_queued_job_and_changes_no_other():
    assert job_states.state_on_work(QUEUED) is RUNNING
    for state in (RUNNING, SUCCEEDED, FAILED, CANCELLED):
        assert job_states.state_on_work(state) is state


@pytest.mark.parametrize(
    "produced, failed, expected",
    [
        (0, 0, RUNNING),
        (2, 0, RUNNING),
        (1, 1, RUNNING),
        (0, 2, RUNNING),
        (3, 0, SUCCEEDED),
        (2, 1, FAILED),
        (0, 3, FAILED),
    ],
)
def test_results_end_a_job_when_every_slot_is_filled(produced, failed, expected):
    assert job_states.state_after_results(produced=produced, failed=failed, text_count=3) is expected


@pytest.mark.parametrize("state", job_states.ACTIVE)
def test_an_active_job_is_cancelled(state):
    assert job_states.must_cancel(_job(state)) is True


def test_cancelling_a_cancelled_job_changes_nothing():
    assert job_states.must_cancel(_job(CANCELLED)) is False


@pytest.mark.parametrize("state", [SUCCEEDED, FAILED])
def test_a_job_that_ended_otherwise_cannot_be_cancelled(state):
    with pytest.raises(FailedPrecondition) as refused:
        job_states.must_cancel(_job(state))
    assert refused.value.reason is Reason.JOB_ALREADY_ENDED
    assert f"projects/demo/generationJobs/0123456789abcdef0123456789abcdef has already ended ({state.value})" in str(
        refused.value
    )


def test_the_index_of_unfinished_jobs_covers_exactly_the_active_states():
    # Queries filter by ACTIVE; the partial index serves them only while its predicate
    # names the same states.
    migration = (MIGRATIONS / "0002_stalled_jobs.sql").read_text()
    predicate = re.search(r"WHERE state IN \(([^)]*)\)", migration)
    assert predicate is not None, "the stalled-jobs index lost its predicate"
    indexed = {literal.strip().strip("'") for literal in predicate.group(1).split(",")}
    assert indexed == {state.value for state in job_states.ACTIVE}
