"""synthtasks.internal.v1.JobStoreService: the bookkeeping of jobs and their slots."""

from __future__ import annotations

from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.internal.v1 import job_store_service_pb2_grpc as job_store_grpc

from services.runtime.errors import InvalidArgument
from services.task_store import validation
from services.task_store.metrics import JOBS
from services.task_store.proto_conversions import (
    job_proto,
    job_state_proto,
    parse_job_error,
    parse_new_job,
    parse_slot_results,
    ref_key,
)
from services.task_store.quotas import QuotaPolicy
from services.task_store.repository.jobs import JobRepository
from services.vocabulary import names

# Stalled jobs handed out per ClaimStalledJobs call.
_MAX_CLAIMED_JOBS = 1000


class JobStoreServicer(job_store_grpc.JobStoreServiceServicer):
    """synthtasks.internal.v1.JobStoreService: the bookkeeping of jobs and their slots."""

    def __init__(self, jobs: JobRepository, quota_policy: QuotaPolicy) -> None:
        self._jobs = jobs
        self._quota_policy = quota_policy

    def CreateJob(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        new = parse_new_job(project, request.generation_job, request.request_id)
        job, created, may_enqueue = self._jobs.create_job(new, self._quota_policy.limits_for(project))
        if created:
            JOBS.labels("created").inc()
        # `enqueued` tells the caller not to enqueue: true for every caller but the one
        # that holds the claim, so racing calls with one request_id enqueue once.
        return job_store_pb2.CreateJobResponse(generation_job=job_proto(job), created=created, enqueued=not may_enqueue)

    def MarkJobEnqueued(self, request, context):
        ref = names.parse_job(request.name, field="name")
        return job_store_pb2.MarkJobEnqueuedResponse(already_enqueued=self._jobs.mark_job_enqueued(*ref_key(ref)))

    def GetJobWork(self, request, context):
        ref = names.parse_job(request.name, field="name")
        validation.non_negative(request.first_slot, field="first_slot")
        if request.slot_count < 1:
            raise InvalidArgument.field("slot_count", "must be at least 1")
        work = self._jobs.get_job_work(ref.project, ref.id, request.first_slot, request.slot_count)
        return job_store_pb2.GetJobWorkResponse(generation_job=job_proto(work.job), filled_slots=work.filled_slots)

    def AppendResults(self, request, context):
        ref = names.parse_job(request.name, field="name")
        validation.batch_size(len(request.results), field="results", limit=validation.MAX_RESULTS_PER_APPEND)
        results = parse_slot_results(request.results)
        appended = self._jobs.append_results(
            ref.project,
            ref.id,
            results,
            extra_prompt_tokens=validation.non_negative(request.extra_prompt_tokens, field="extra_prompt_tokens"),
            extra_completion_tokens=validation.non_negative(
                request.extra_completion_tokens, field="extra_completion_tokens"
            ),
        )
        if appended.ended_job:
            JOBS.labels(appended.state.value.lower()).inc()
        return job_store_pb2.AppendResultsResponse(
            outcomes=[
                job_store_pb2.SlotOutcome(slot=o.slot, written=o.written, duplicate=o.duplicate)
                for o in appended.outcomes
            ],
            state=job_state_proto(appended.state),
        )

    def FailJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        if not request.HasField("error"):
            raise InvalidArgument.field("error", "is required: say why the job failed")
        error = parse_job_error(request.error, field="error")
        job, failed = self._jobs.fail_job(ref.project, ref.id, error)
        if failed:
            JOBS.labels("failed").inc()
        return job_store_pb2.FailJobResponse(generation_job=job_proto(job))

    def ClaimStalledJobs(self, request, context):
        stalled_for = request.stalled_for.ToTimedelta()
        if stalled_for.total_seconds() <= 0:
            raise InvalidArgument.field("stalled_for", "must be positive")
        if not 1 <= request.max_jobs <= _MAX_CLAIMED_JOBS:
            raise InvalidArgument.field("max_jobs", f"must be between 1 and {_MAX_CLAIMED_JOBS}")
        jobs = self._jobs.claim_stalled_jobs(stalled_for, request.max_jobs)
        return job_store_pb2.ClaimStalledJobsResponse(generation_jobs=[job_proto(job) for job in jobs])
