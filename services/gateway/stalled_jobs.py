"""Recovery of jobs whose queue messages were lost.

Workers retry a message for ~15 minutes while the task store or registry is down, then
dramatiq dead-letters it; a gateway that dies between recording a job and enqueueing it
leaves a job nobody will enqueue unless the client retries. Either way the job stays
unfinished with no progress. Every `interval`, the sweeper asks the task store for jobs
unfinished and unchanged for `stalled_for` (claimed atomically, so several gateways never
take the same one) and enqueues all their slot ranges again.

Re-enqueueing a whole job is safe: workers skip the slots already written (one
GetJobWork call per range), and a slot is written at most once whatever runs twice. The
price of a false alarm (a job merely queued behind a long backlog) is one more message
per range, which finds its slots filled or fills them once."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import grpc
import redis
from google.protobuf.duration_pb2 import Duration
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as pb

from services.gateway.job_launcher import JobLauncher
from services.gateway.metrics import STALLED_JOBS_RECOVERED

log = logging.getLogger(__name__)

_JOBS_PER_CLAIM = 100


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
        """Claim and re-enqueue stalled jobs until none is left; the number recovered."""
        recovered = 0
        while not self._stopping.is_set():
            claimed = self._job_store.ClaimStalledJobs(
                store_pb.ClaimStalledJobsRequest(stalled_for=self._stalled_for, max_jobs=_JOBS_PER_CLAIM),
                timeout=self._timeout,
            ).generation_jobs
            for job in claimed:
                self._launcher.enqueue(job, self._timeout)
                STALLED_JOBS_RECOVERED.inc()
                log.warning(
                    "re-enqueued a stalled job",
                    extra={
                        "job": job.name,
                        "state": pb.GenerationJobState.Name(job.state),
                        "produced": job.counts.produced,
                    },
                )
            recovered += len(claimed)
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
