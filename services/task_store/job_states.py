"""The job state machine, without SQL: the moves a job can make and the state each
change leads to. The repository reads the job under its row lock, asks these rules, and
writes what they decide; where SQL must select jobs by state, its filter is built from
ACTIVE, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping

from services.runtime.errors import FailedPrecondition
from services.task_store.records import Job, JobState
from services.vocabulary.names import job_name
from services.vocabulary.reasons import Reason

# Unfinished jobs: workers fill their slots, they count against the project's quotas,
# and one that stalls is handed to the sweeper.
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
# Ended jobs: nothing more is written to them, and a watch of one ends.
TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

# Every move a job can make. A QUEUED job can end without running: one batch of results
# may fill all its slots before any worker asked for its work.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def may_move(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]


def state_on_work(current: JobState) -> JobState:
    """The state of a job a worker asks work for: a QUEUED job starts RUNNING, any other
    keeps its state (a running one is already started, an ended one stays ended)."""
    if may_move(current, JobState.RUNNING):
        return JobState.RUNNING
    return current


def state_after_results(*, produced: int, failed: int, text_count: int) -> JobState:
    """The state of an active job after results changed it: RUNNING until every slot
    holds a text or a failure, then SUCCEEDED, or FAILED when any slot failed."""
    if produced + failed < text_count:
        return JobState.RUNNING
    return JobState.SUCCEEDED if failed == 0 else JobState.FAILED


def must_cancel(job: Job) -> bool:
    """Whether cancelling `job` changes it. Cancelling is idempotent, so a job already
    CANCELLED is answered as it is (False); one that ended otherwise keeps its outcome,
    and the call is refused."""
    if job.state is JobState.CANCELLED:
        return False
    if not may_move(job.state, JobState.CANCELLED):
        raise FailedPrecondition(
            f"{job_name(job.project, job.id)} has already ended ({job.state.value}); only queued or running"
            " jobs can be cancelled",
            reason=Reason.JOB_ALREADY_ENDED,
        )
    return True
