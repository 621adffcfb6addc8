"""Starting and cancelling generation jobs: the only gateway calls that do more than
check and forward.

Start: check the input, resolve the provider among the project's assigned ones, record
the job in the task store (idempotent on request_id), add its slot ranges to the fair
backlog on Redis (generation_queue/backlog.py) unless that already happened, then tell
the task store it is enqueued. A crash between enqueueing and marking leads a retried
call to enqueue again; that costs at most some provider calls, never a duplicate text
(slots are written once)."""

from __future__ import annotations

import logging

import redis
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import provider_service_pb2_grpc

from services.gateway.generation_rules import check_generation_job
from services.generation_queue.backlog import Backlog
from services.generation_queue.messages import slot_ranges
from services.generation_queue.stop_flags import GRANT_SEND_WITHIN_SECONDS, mark_job_stopped, wait_for_granted_calls
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.vocabulary.reasons import Reason

log = logging.getLogger(__name__)


class JobLauncher:
    def __init__(
        self,
        *,
        providers: provider_service_pb2_grpc.ProviderServiceStub,
        job_store: job_store_service_pb2_grpc.JobStoreServiceStub,
        backlog: Backlog,
        redis_client: redis.Redis,
        redis_namespace: str,
        max_text_count: int,
        max_prompt_chars: int,
        slots_per_message: int,
    ) -> None:
        self._providers = providers
        self._job_store = job_store
        self._backlog = backlog
        self._redis = redis_client
        self._namespace = redis_namespace
        self._max_text_count = max_text_count
        self._max_prompt_chars = max_prompt_chars
        self._slots_per_message = slots_per_message

    def start(self, request: pb.CreateGenerationJobRequest, project_id: str, timeout: float) -> pb.GenerationJob:
        job = pb.GenerationJob()
        job.CopyFrom(request.generation_job)
        check_generation_job(
            job,
            max_text_count=self._max_text_count,
            max_prompt_chars=self._max_prompt_chars,
            request_id=request.request_id,
        )
        provider = self._resolve_provider(project_id, job.provider, timeout)
        job.provider = provider.name
        default_model = (
            provider.deployment if provider.kind == provider_pb.PROVIDER_KIND_AZURE_OPENAI else provider.model
        )
        if job.model and job.model != default_model and job.model not in provider.allowed_models:
            # Which models a project may spend the admin's key on is the admin's call.
            allowed = ", ".join([default_model, *provider.allowed_models])
            raise PermissionDenied(
                f"generation_job.model: {provider.name} allows only {allowed}; an admin can add models"
                " to the provider's allowed_models",
                reason=Reason.MODEL_NOT_ALLOWED,
            )
        job.model = job.model or default_model
        created = self._job_store.CreateJob(
            store_pb.CreateJobRequest(parent=request.parent, generation_job=job, request_id=request.request_id),
            timeout=timeout,
        )
        if not created.enqueued:
            self.enqueue(created.generation_job, timeout)
        return created.generation_job

    def enqueue(self, job: pb.GenerationJob, timeout: float) -> None:
        """Add every slot range of a recorded job to the backlog (one round trip), then
        record that it is enqueued."""
        self._backlog.enqueue_job(slot_ranges(job.name, job.text_count, self._slots_per_message))
        self._job_store.MarkJobEnqueued(store_pb.MarkJobEnqueuedRequest(name=job.name), timeout=timeout)

    def recover(self, job: pb.GenerationJob, timeout: float) -> bool:
        """Enqueue every slot range of a job again if, and only if, its work is lost: nothing
        of it is left in the backlog, the queue, the delay queue or the workers' live calls
        (Backlog.recover_job). True when it was enqueued again."""
        if not self._backlog.recover_job(slot_ranges(job.name, job.text_count, self._slots_per_message)):
            return False
        self._job_store.MarkJobEnqueued(store_pb.MarkJobEnqueuedRequest(name=job.name), timeout=timeout)
        return True

    def _resolve_provider(self, project_id: str, requested: str, timeout: float) -> provider_pb.Provider:
        assigned = self._providers.ListProjectProviders(
            provider_pb.ListProjectProvidersRequest(project=f"projects/{project_id}"), timeout=timeout
        ).project_providers
        if requested:
            for item in assigned:
                if item.provider.name == requested:
                    return item.provider
            raise FailedPrecondition(
                f"generation_job.provider: {requested} is not assigned to projects/{project_id}",
                reason=Reason.PROVIDER_NOT_ASSIGNED,
            )
        for item in assigned:
            if item.default:
                return item.provider
        raise FailedPrecondition(
            f"generation_job.provider: projects/{project_id} has no default provider; name one or assign a default",
            reason=Reason.NO_DEFAULT_PROVIDER,
        )

    def stop(self, job_name: str) -> None:
        """Raise the stop flag workers check when they are granted a provider call; done
        before the task store records the cancel, so no call is granted after that. The
        job's ranges still waiting in the backlog are dropped: none reaches a worker."""
        self._backlog.drop_job(job_name)
        mark_job_stopped(self._redis, self._namespace, job_name)

    def wait_for_granted_calls(self, job_name: str) -> None:
        """After `stop`: wait until the job's calls granted before the flag have reached the
        provider and ended, or passed their send-by time unsent (the handshake in
        generation_queue/stop_flags.py), so that none starts once the cancel is answered."""
        if not wait_for_granted_calls(
            self._redis, self._namespace, job_name, timeout_seconds=GRANT_SEND_WITHIN_SECONDS + 1
        ):
            log.warning("granted calls still recorded after their send-by time", extra={"job": job_name})
