"""The public API: authenticate, authorize, check names, forward with a deadline.

Every method reads the same way: who is calling and may they (PERMISSION_DENIED before
anything can be NOT_FOUND), then one downstream call. Downstream failures pass through
unchanged (the interceptor re-sends their status and rich details).

Unary methods are plain functions (the server runs them in its thread pool); the two
server streams are coroutines relaying an asyncio call to the task store, so an open
stream holds no thread, and each is bounded by streams.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
from synthtasks.v1 import (
    audit_service_pb2_grpc,
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)
from synthtasks.v1 import (
    generation_service_pb2 as gen_pb,
)
from synthtasks.v1 import (
    provider_service_pb2 as provider_pb,
)
from synthtasks.v1 import (
    task_service_pb2 as task_pb,
)

from services.gateway.auth import Authenticator
from services.gateway.job_launcher import JobLauncher
from services.gateway.stalled_jobs import flag_stalled
from services.gateway.streams import STREAM_MESSAGES, StreamLimiter
from services.runtime.call_metadata import caller_project_var, caller_token_var
from services.vocabulary import names


class Deadlines:
    """Downstream deadlines: the configured one, shortened to what the caller has left."""

    def __init__(self, unary: float, validation: float) -> None:
        self.unary = unary
        self.validation = validation

    @staticmethod
    def remaining(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> float | None:
        """What the caller's own deadline leaves (None without one)."""
        remaining = context.time_remaining()
        return remaining if remaining is not None and remaining < 1e8 else None

    def of(self, context: grpc.ServicerContext, configured: float | None = None) -> float:
        limit = configured or self.unary
        remaining = self.remaining(context)
        return min(limit, remaining) if remaining is not None else limit


class StreamRelay:
    """Authorizes a stream, holds one of its caller's stream slots while it lasts, and
    relays the task store's stream to the caller for at most `max_seconds`."""

    def __init__(self, auth: Authenticator, limiter: StreamLimiter, max_seconds: float) -> None:
        self._auth = auth
        self._limiter = limiter
        self._max_seconds = max_seconds

    async def relay(
        self,
        context: grpc.aio.ServicerContext,
        project_of: Callable[[], str],
        open_call: Callable[[float | None], Any],
        *,
        on_time_up: Callable[[], Any],
        amend: Callable[[Any], None] | None = None,
    ) -> None:
        """`project_of` parses the request's name, after the caller is known: a caller
        without a token learns nothing, not even the name rules. `amend` adds what the
        gateway knows to each message before it is sent."""
        # The token check may call the registry: not on the event loop.
        principal = await asyncio.to_thread(self._auth.principal, context)
        caller_token_var.set(principal.token)
        project_id = project_of()
        principal.require_project(project_id)
        with self._limiter.hold(principal.token, project_id):
            call = open_call(Deadlines.remaining(context))
            timed_out = False

            def time_up() -> None:
                nonlocal timed_out
                timed_out = True
                call.cancel()

            # Not asyncio.timeout: a write waiting on the caller's flow control cannot be
            # interrupted. Cancelling the downstream call releases the task store at once;
            # this side ends as soon as the caller reads again (or leaves), and until then
            # the stream keeps its caller's slot, so a caller that stops reading only
            # uses up its own share.
            timer = asyncio.get_running_loop().call_later(self._max_seconds, time_up)
            try:
                async for response in call:
                    if amend is not None:
                        amend(response)
                    await context.write(response)
                    STREAM_MESSAGES.inc()
            except (asyncio.CancelledError, grpc.aio.AioRpcError):
                if not timed_out:
                    raise
                await on_time_up()
            finally:
                timer.cancel()
                # Our caller left, the time is up or the stream ended: release the task store's side.
                call.cancel()


_ENDED_JOB_STATES = (
    gen_pb.GENERATION_JOB_STATE_SUCCEEDED,
    gen_pb.GENERATION_JOB_STATE_FAILED,
    gen_pb.GENERATION_JOB_STATE_CANCELLED,
)


def _in_parent(auth: Authenticator, context: grpc.ServicerContext, parent: str, field: str = "parent") -> str:
    """The project of `parent`, once the caller is known and may act in it. Who is
    calling comes first: a caller without a token learns nothing, not even name rules."""
    principal = auth.principal(context)
    project = names.parse_project(parent, field=field)
    principal.require_project(project)
    return project


def _in_project_of(
    auth: Authenticator, context: grpc.ServicerContext, name: str, collection: str, field: str = "name"
) -> None:
    """Like _in_parent, for the name of a job, staged text or task."""
    principal = auth.principal(context)
    principal.require_project(names.parse_child(name, collection, field=field).project)


class ProviderGateway(provider_service_pb2_grpc.ProviderServiceServicer):
    def __init__(
        self, auth: Authenticator, registry: provider_service_pb2_grpc.ProviderServiceStub, deadlines: Deadlines
    ) -> None:
        self._auth = auth
        self._registry = registry
        self._deadlines = deadlines

    def _admin(self, context: grpc.ServicerContext) -> None:
        self._auth.principal(context).require_admin()

    def CreateProvider(self, request, context):
        self._admin(context)
        timeout = self._deadlines.validation if request.validate_first else None
        return self._registry.CreateProvider(request, timeout=self._deadlines.of(context, timeout))

    def GetProvider(self, request, context):
        self._admin(context)
        return self._registry.GetProvider(request, timeout=self._deadlines.of(context))

    def ListProviders(self, request, context):
        self._admin(context)
        return self._registry.ListProviders(request, timeout=self._deadlines.of(context))

    def UpdateProvider(self, request, context):
        self._admin(context)
        return self._registry.UpdateProvider(request, timeout=self._deadlines.of(context))

    def DeleteProvider(self, request, context):
        self._admin(context)
        return self._registry.DeleteProvider(request, timeout=self._deadlines.of(context))

    def ValidateProvider(self, request, context):
        self._admin(context)
        return self._registry.ValidateProvider(request, timeout=self._deadlines.of(context, self._deadlines.validation))

    def TestProviderConnection(self, request, context):
        self._admin(context)
        return self._registry.TestProviderConnection(
            request, timeout=self._deadlines.of(context, self._deadlines.validation)
        )

    def AssignProvider(self, request, context):
        self._admin(context)
        caller_project_var.set(names.parse_project(request.project, field="project"))  # for the access log
        return self._registry.AssignProvider(request, timeout=self._deadlines.of(context))

    def UnassignProvider(self, request, context):
        self._admin(context)
        caller_project_var.set(names.parse_project(request.project, field="project"))
        return self._registry.UnassignProvider(request, timeout=self._deadlines.of(context))

    def ListProjectProviders(self, request: provider_pb.ListProjectProvidersRequest, context):
        _in_parent(self._auth, context, request.project, "project")
        return self._registry.ListProjectProviders(request, timeout=self._deadlines.of(context))


class TokenGateway(token_service_pb2_grpc.TokenServiceServicer):
    def __init__(
        self, auth: Authenticator, registry: token_service_pb2_grpc.TokenServiceStub, deadlines: Deadlines
    ) -> None:
        self._auth = auth
        self._registry = registry
        self._deadlines = deadlines

    def CreateToken(self, request, context):
        self._auth.principal(context).require_admin()
        return self._registry.CreateToken(request, timeout=self._deadlines.of(context))

    def ListTokens(self, request, context):
        self._auth.principal(context).require_admin()
        return self._registry.ListTokens(request, timeout=self._deadlines.of(context))

    def DeleteToken(self, request, context):
        self._auth.principal(context).require_admin()
        return self._registry.DeleteToken(request, timeout=self._deadlines.of(context))

    def GetCallerIdentity(self, request, context):
        # Any valid token may ask who it is. The principal names the token for the
        # registry (in the call's metadata), which answers from the token's own row.
        self._auth.principal(context)
        return self._registry.GetCallerIdentity(request, timeout=self._deadlines.of(context))


class GenerationGateway(generation_service_pb2_grpc.GenerationServiceServicer):
    def __init__(
        self,
        auth: Authenticator,
        jobs: generation_service_pb2_grpc.GenerationServiceStub,
        streaming_jobs: Callable[[], generation_service_pb2_grpc.GenerationServiceStub],
        launcher: JobLauncher,
        deadlines: Deadlines,
        streams: StreamRelay,
        stalled_for: timedelta,
    ) -> None:
        self._auth = auth
        self._jobs = jobs
        self._stalled_for = stalled_for
        # The asyncio stub exists only once the server's loop runs: fetched per call.
        self._streaming_jobs = streaming_jobs
        self._launcher = launcher
        self._deadlines = deadlines
        self._streams = streams

    def CreateGenerationJob(self, request: gen_pb.CreateGenerationJobRequest, context):
        project_id = _in_parent(self._auth, context, request.parent)
        job = self._launcher.start(request, project_id, self._deadlines.of(context))
        return gen_pb.CreateGenerationJobResponse(generation_job=job)

    def GetGenerationJob(self, request, context):
        _in_project_of(self._auth, context, request.name, names.JOBS)
        response = self._jobs.GetGenerationJob(request, timeout=self._deadlines.of(context))
        flag_stalled([response.generation_job], self._stalled_for)
        return response

    def ListGenerationJobs(self, request, context):
        _in_parent(self._auth, context, request.parent)
        response = self._jobs.ListGenerationJobs(request, timeout=self._deadlines.of(context))
        flag_stalled(response.generation_jobs, self._stalled_for)
        return response

    async def WatchGenerationJob(self, request, context):
        async def time_up() -> None:
            """End cleanly: calling WatchGenerationJob again resumes from the current snapshot."""

        await self._streams.relay(
            context,
            lambda: names.parse_job(request.name, field="name").project,
            lambda timeout: self._streaming_jobs().WatchGenerationJob(request, timeout=timeout),
            on_time_up=time_up,
            amend=lambda response: flag_stalled([response.generation_job], self._stalled_for),
        )

    def CancelGenerationJob(self, request, context):
        _in_project_of(self._auth, context, request.name, names.JOBS)
        timeout = self._deadlines.of(context)
        # The stop flag (kept for days) is raised only for a job that exists and has not
        # ended: a cancel answered NOT_FOUND or INVALID_ARGUMENT leaves nothing behind.
        job = self._jobs.GetGenerationJob(gen_pb.GetGenerationJobRequest(name=request.name), timeout=timeout)
        stopping = job.generation_job.state not in _ENDED_JOB_STATES
        if stopping:
            self._launcher.stop(request.name)
        cancelled = self._jobs.CancelGenerationJob(request, timeout=timeout)
        if stopping:
            # Recorded first, so that calls ending meanwhile cannot complete the job instead.
            self._launcher.wait_for_granted_calls(request.name)
        return cancelled

    def GetProjectQuota(self, request, context):
        principal = self._auth.principal(context)
        principal.require_project(names.parse_project_quota(request.name, field="name"))
        return self._jobs.GetProjectQuota(request, timeout=self._deadlines.of(context))

    def GetEntityBalance(self, request, context):
        principal = self._auth.principal(context)
        principal.require_project(names.parse_job_or_project(request.scope, field="scope")[0])
        return self._jobs.GetEntityBalance(request, timeout=self._deadlines.of(context))


class TaskGateway(task_service_pb2_grpc.TaskServiceServicer):
    def __init__(
        self,
        auth: Authenticator,
        tasks: task_service_pb2_grpc.TaskServiceStub,
        streaming_tasks: Callable[[], task_service_pb2_grpc.TaskServiceStub],
        deadlines: Deadlines,
        streams: StreamRelay,
    ) -> None:
        self._auth = auth
        self._tasks = tasks
        self._streaming_tasks = streaming_tasks
        self._deadlines = deadlines
        self._streams = streams

    def _in_parent(self, request, context) -> None:
        _in_parent(self._auth, context, request.parent)

    def ListStagedTexts(self, request, context):
        self._in_parent(request, context)
        return self._tasks.ListStagedTexts(request, timeout=self._deadlines.of(context))

    def GetStagedText(self, request, context):
        _in_project_of(self._auth, context, request.name, names.STAGED_TEXTS)
        return self._tasks.GetStagedText(request, timeout=self._deadlines.of(context))

    def UpdateStagedText(self, request: task_pb.UpdateStagedTextRequest, context):
        _in_project_of(self._auth, context, request.staged_text.name, names.STAGED_TEXTS, "staged_text.name")
        return self._tasks.UpdateStagedText(request, timeout=self._deadlines.of(context))

    def DiscardStagedTexts(self, request, context):
        self._in_parent(request, context)
        return self._tasks.DiscardStagedTexts(request, timeout=self._deadlines.of(context))

    def RestoreStagedTexts(self, request, context):
        self._in_parent(request, context)
        return self._tasks.RestoreStagedTexts(request, timeout=self._deadlines.of(context))

    def ImportStagedTexts(self, request, context):
        self._in_parent(request, context)
        return self._tasks.ImportStagedTexts(request, timeout=self._deadlines.of(context))

    def ListTasks(self, request, context):
        self._in_parent(request, context)
        return self._tasks.ListTasks(request, timeout=self._deadlines.of(context))

    def GetTask(self, request, context):
        _in_project_of(self._auth, context, request.name, names.TASKS)
        return self._tasks.GetTask(request, timeout=self._deadlines.of(context))

    def UpdateTask(self, request: task_pb.UpdateTaskRequest, context):
        _in_project_of(self._auth, context, request.task.name, names.TASKS, "task.name")
        return self._tasks.UpdateTask(request, timeout=self._deadlines.of(context))

    async def ExportStagedTexts(self, request, context):
        await self._relay_export(request, context, lambda stub: stub.ExportStagedTexts)

    async def ExportTasks(self, request, context):
        await self._relay_export(request, context, lambda stub: stub.ExportTasks)

    async def _relay_export(
        self,
        request: task_pb.ExportStagedTextsRequest | task_pb.ExportTasksRequest,
        context: grpc.aio.ServicerContext,
        method_of: Callable[[task_service_pb2_grpc.TaskServiceStub], Any],
    ) -> None:
        async def time_up() -> None:
            # A cut file must not look complete.
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the export took longer than this gateway allows one stream; read it faster or narrow the filter",
            )

        await self._streams.relay(
            context,
            lambda: names.parse_project(request.parent, field="parent"),
            lambda timeout: method_of(self._streaming_tasks())(request, timeout=timeout),
            on_time_up=time_up,
        )


class AuditGateway(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(
        self, auth: Authenticator, registry: audit_service_pb2_grpc.AuditServiceStub, deadlines: Deadlines
    ) -> None:
        self._auth = auth
        self._registry = registry
        self._deadlines = deadlines

    def ListAuditEvents(self, request, context):
        self._auth.principal(context).require_admin()
        return self._registry.ListAuditEvents(request, timeout=self._deadlines.of(context))
