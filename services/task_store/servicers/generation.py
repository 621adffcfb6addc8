"""synthtasks.v1.GenerationService: reading, watching and cancelling jobs, and quotas."""

from __future__ import annotations

from datetime import UTC, datetime

from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import generation_service_pb2_grpc as generation_grpc

from services.task_store import quotas
from services.task_store.errors import Unimplemented
from services.task_store.metrics import JOBS
from services.task_store.page_positions import next_token, page_position, query_key
from services.task_store.proto_conversions import (
    entity_balance_proto,
    job_proto,
    parse_state_filter,
    ref_key,
    staged_text_proto,
)
from services.task_store.quotas import QuotaPolicy
from services.task_store.records import JobState
from services.task_store.repository.entity_balance import EntityBalanceRepository
from services.task_store.repository.jobs import JobRepository
from services.task_store.watch import JobEventHub, follow_job
from services.vocabulary import names, page_tokens


class GenerationServicer(generation_grpc.GenerationServiceServicer):
    """synthtasks.v1.GenerationService, minus job creation (the gateway's, through
    JobStoreService.CreateJob)."""

    def __init__(
        self, jobs: JobRepository, events: JobEventHub, quota_policy: QuotaPolicy, balances: EntityBalanceRepository
    ) -> None:
        self._jobs = jobs
        self._events = events
        self._quota_policy = quota_policy
        self._balances = balances

    def CreateGenerationJob(self, request, context):
        raise Unimplemented("jobs are created through the gateway")

    def GetProjectQuota(self, request, context):
        project = names.parse_project_quota(request.name, field="name")
        limits = self._quota_policy.limits_for(project)
        usage = self._jobs.quota_usage(project)
        return generation_pb2.GetProjectQuotaResponse(
            project_quota=generation_pb2.ProjectQuota(
                name=request.name,
                quotas=[
                    generation_pb2.QuotaUsage(quota=quota, limit=limits.limit_of(quota), usage=usage.usage_of(quota))
                    for quota in quotas.QUOTAS
                ],
            )
        )

    def GetEntityBalance(self, request, context):
        project, job_id = names.parse_job_or_project(request.scope, field="scope")
        if job_id is not None:
            self._jobs.get_job(project, job_id)  # NOT_FOUND rather than an empty balance
        balance = self._balances.entity_balance(project, job_id)
        return generation_pb2.GetEntityBalanceResponse(entity_balance=entity_balance_proto(request.scope, balance))

    def GetGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        return generation_pb2.GetGenerationJobResponse(generation_job=job_proto(self._jobs.get_job(*ref_key(ref))))

    def ListGenerationJobs(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        state = parse_state_filter(request.state, generation_pb2.GenerationJobState, JobState, field="state")
        limit = page_tokens.page_size(request.page_size)
        query = query_key(request.parent, state.value if state else "")
        page = self._jobs.list_jobs(project, state, page_position(request.page_token, query), limit)
        return generation_pb2.ListGenerationJobsResponse(
            generation_jobs=[job_proto(job) for job in page.items], next_page_token=next_token(page, query)
        )

    def WatchGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        previous: datetime | None = None
        for event in follow_job(
            self._jobs,
            self._balances,
            self._events,
            ref.project,
            ref.id,
            is_active=context.is_active,
            on_stop=context.add_callback,
        ):
            now = datetime.now(UTC)
            response = generation_pb2.WatchGenerationJobResponse(generation_job=job_proto(event.job))
            if event.text is not None:
                response.staged_text.CopyFrom(staged_text_proto(event.text))
            if event.balance is not None:
                response.entity_balance.CopyFrom(entity_balance_proto(request.name, event.balance))
            if previous is not None:
                response.since_previous.FromTimedelta(now - previous)
            previous = now
            yield response

    def CancelGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        job, cancelled = self._jobs.cancel_job(*ref_key(ref))
        if cancelled:
            JOBS.labels("cancelled").inc()
        return generation_pb2.CancelGenerationJobResponse(generation_job=job_proto(job))
