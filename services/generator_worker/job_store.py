"""The worker's client of the task store's JobStoreService (asyncio gRPC).

Maps the statuses that matter to the worker: NOT_FOUND (the job is gone) and
FAILED_PRECONDITION (the job already ended) stop the work on the job; transient failures
are retried briefly, then become DependencyUnavailable (the message is retried later);
anything else is a DependencyUnavailable at once, since the message cannot make progress."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import grpc
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as pb

from services.generator_worker import rpc
from services.generator_worker.errors import DependencyUnavailable, JobStopped

TERMINAL_STATES = frozenset(
    {
        pb.GENERATION_JOB_STATE_SUCCEEDED,
        pb.GENERATION_JOB_STATE_FAILED,
        pb.GENERATION_JOB_STATE_CANCELLED,
    }
)


class JobStoreClient:
    def __init__(self, channel: grpc.aio.Channel, *, timeout: float) -> None:
        self._stub = job_store_service_pb2_grpc.JobStoreServiceStub(channel)
        self._timeout = timeout

    async def get_job_work(self, job: str, first_slot: int, slot_count: int) -> store_pb.GetJobWorkResponse:
        request = store_pb.GetJobWorkRequest(name=job, first_slot=first_slot, slot_count=slot_count)
        return await self._call(self._stub.GetJobWork, request, "GetJobWork")

    async def append_results(
        self,
        job: str,
        results: Sequence[store_pb.SlotResult],
        *,
        extra_prompt_tokens: int = 0,
        extra_completion_tokens: int = 0,
    ) -> store_pb.AppendResultsResponse:
        request = store_pb.AppendResultsRequest(
            name=job,
            results=results,
            extra_prompt_tokens=extra_prompt_tokens,
            extra_completion_tokens=extra_completion_tokens,
        )
        return await self._call(self._stub.AppendResults, request, "AppendResults")

    async def fail_job(self, job: str, error: pb.JobError) -> None:
        """Idempotent: a job that already ended stays as it is."""
        with contextlib.suppress(JobStopped):
            await self._call(self._stub.FailJob, store_pb.FailJobRequest(name=job, error=error), "FailJob")

    async def _call(self, method: Any, request: Any, what: str) -> Any:
        try:
            return await rpc.call_with_retries(method, request, timeout=self._timeout, what=what)
        except grpc.RpcError as error:
            code = rpc.status_code(error)
            if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise JobStopped(f"{what}: the job is gone or has ended ({code.name})") from None
            raise DependencyUnavailable(f"{what} failed with {code.name}") from None
