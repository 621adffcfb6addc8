"""Recovery of jobs whose queue messages were lost.

Redis restarted without persistence, a worker retried a message through a long outage
until Dramatiq dead-lettered it, or a gateway died between recording a job and
enqueueing it: the job stays unfinished with no progress, and nothing will ever run it.
Every `interval`, the sweeper asks the task store for jobs unfinished and unchanged for
`stalled_for` (claimed atomically, so several gateways never take the same one) and
checks in Redis whether each one's work is really lost (Backlog.recover_job): a job with
a range in the fair backlog, a message in the queue or the delay queue (waiting, or held
by a worker) or a live provider call is merely waiting - behind other projects' work, for
a provider's rate limit, for a worker to come up - and is left alone; only a job with
none of these has all its slot ranges enqueued again, in the same Redis script run.

So the threshold can be short (60 s by default, checked every 15 s: a lost job runs
again within 75 s), and a job waiting longer than that gets no duplicate range, however
often it is checked. Even a wrong call would be safe: workers skip the slots already
written, and a slot is written at most once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import grpc
import redis
from google.protobuf.duration_pb2 import Duration
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as pb

from services.gateway.job_launcher import JobLauncher
from services.gateway.metrics import STALLED_JOBS_RECOVERED, STALLED_JOBS_WAITING

log = logging.getLogger(__name__)

_JOBS_PER_CLAIM = 100
_UNFINISHED = (pb.GENERATION_JOB_STATE_QUEUED, pb.GENERATION_JOB_STATE_RUNNING)


def flag_stalled(jobs: Iterable[pb.GenerationJob], stalled_for: timedelta) -> None:
    """Set `stalled` on the unfinished jobs whose last change (update_time: for an
    unfinished job, its last text or state change) is older than `stalled_for`."""
    since = datetime.now(UTC) - stalled_for
    for job in jobs:
        job.stalled = job.state in _UNFINISHED and job.update_time.ToDatetime(UTC) < since


class StalledJobSweeper:
    def __init__(
        self,
        *,
        job_store: job_store_service_pb2_grpc.JobStoreServiceStub,
        launcher: JobLauncher,
        stalled_for: timedelta,
        interval_seconds: float,
        timeout: float,
    ) -> None:
        self._job_store = job_store
        self._launcher = launcher
        self._stalled_for = Duration()
        self._stalled_for.FromTimedelta(stalled_for)
        self._interval = interval_seconds
        self._timeout = timeout
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stalled-job-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout + 5)

    def sweep(self) -> int:
        """Claim stalled jobs until none is left, and enqueue again those whose work is
        lost; the number enqueued again."""
        recovered = 0
        while not self._stopping.is_set():
            claimed = self._job_store.ClaimStalledJobs(
                store_pb.ClaimStalledJobsRequest(stalled_for=self._stalled_for, max_jobs=_JOBS_PER_CLAIM),
                timeout=self._timeout,
            ).generation_jobs
            for job in claimed:
                if not self._launcher.recover(job, self._timeout):
                    STALLED_JOBS_WAITING.inc()
                    log.debug("a job without progress still has work queued", extra={"job": job.name})
                    continue
                recovered += 1
                STALLED_JOBS_RECOVERED.inc()
                log.warning(
                    "re-enqueued a stalled job",
                    extra={
                        "job": job.name,
                        "state": pb.GenerationJobState.Name(job.state),
                        "produced": job.counts.produced,
                    },
                )
            if len(claimed) < _JOBS_PER_CLAIM:
                return recovered
        return recovered

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.sweep()
            except (grpc.RpcError, redis.RedisError) as error:
                # The outage that stalled the jobs may not be over: try again next round.
                log.warning("stalled-job sweep failed", extra={"error": str(error)})
            except Exception:
                # Anything else is a bug; logged, and the sweeper lives on for the next round.
                log.exception("stalled-job sweep failed")
