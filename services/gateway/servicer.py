"""The public API: authenticate, authorize, check names, forward with a deadline.

Every method reads the same way: who is calling and may they (PERMISSION_DENIED before
anything can be NOT_FOUND), then one downstream call. Downstream failures pass through
unchanged (the interceptor re-sends their status and rich details)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
from synthtasks.v1 import (
    generation_service_pb2 as gen_pb,
)
from synthtasks.v1 import (
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)
from synthtasks.v1 import (
    provider_service_pb2 as provider_pb,
)
from synthtasks.v1 import (
    task_service_pb2 as task_pb,
)

from services.gateway.auth import Authenticator, Principal
from services.gateway.job_launcher import JobLauncher
from services.gateway.names import project_of_child, project_of_parent


class Deadlines:
    """Downstream deadlines: the configured one, shortened to what the caller has left."""

    def __init__(self, unary: float, validation: float) -> None:
        self.unary = unary
        self.validation = validation

    @staticmethod
    def _remaining(context: grpc.ServicerContext) -> float | None:
        remaining = context.time_remaining()
        return remaining if remaining is not None and remaining < 1e8 else None

    def of(self, context: grpc.ServicerContext, configured: float | None = None) -> float:
        limit = configured or self.unary
        remaining = self._remaining(context)
        return min(limit, remaining) if remaining is not None else limit

    def of_stream(self, context: grpc.ServicerContext) -> float | None:
        """Streams last as long as the caller wants; only the caller's own deadline applies."""
        return self._remaining(context)


def _relay(call: Any, context: grpc.ServicerContext) -> Iterator[Any]:
    """Yield a downstream stream, cancelling it when our caller goes away."""
    context.add_callback(call.cancel)
    yield from call


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
        return self._registry.AssignProvider(request, timeout=self._deadlines.of(context))

    def UnassignProvider(self, request, context):
        self._admin(context)
        return self._registry.UnassignProvider(request, timeout=self._deadlines.of(context))

    def ListProjectProviders(self, request: provider_pb.ListProjectProvidersRequest, context):
        principal = self._auth.principal(context)
        principal.require_project(project_of_parent(request.project, "project"))
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


class GenerationGateway(generation_service_pb2_grpc.GenerationServiceServicer):
    def __init__(
        self,
        auth: Authenticator,
        jobs: generation_service_pb2_grpc.GenerationServiceStub,
        launcher: JobLauncher,
        deadlines: Deadlines,
    ) -> None:
        self._auth = auth
        self._jobs = jobs
        self._launcher = launcher
        self._deadlines = deadlines

    def _in_project(self, context: grpc.ServicerContext, project_id: str) -> Principal:
        principal = self._auth.principal(context)
        principal.require_project(project_id)
        return principal

    def CreateGenerationJob(self, request: gen_pb.CreateGenerationJobRequest, context):
        project_id = project_of_parent(request.parent)
        self._in_project(context, project_id)
        job = self._launcher.start(request, project_id, self._deadlines.of(context))
        return gen_pb.CreateGenerationJobResponse(generation_job=job)

    def GetGenerationJob(self, request, context):
        self._in_project(context, project_of_child(request.name, "generationJobs"))
        return self._jobs.GetGenerationJob(request, timeout=self._deadlines.of(context))

    def ListGenerationJobs(self, request, context):
        self._in_project(context, project_of_parent(request.parent))
        return self._jobs.ListGenerationJobs(request, timeout=self._deadlines.of(context))

    def WatchGenerationJob(self, request, context):
        self._in_project(context, project_of_child(request.name, "generationJobs"))
        yield from _relay(self._jobs.WatchGenerationJob(request, timeout=self._deadlines.of_stream(context)), context)

    def CancelGenerationJob(self, request, context):
        self._in_project(context, project_of_child(request.name, "generationJobs"))
        self._launcher.stop(request.name)
        return self._jobs.CancelGenerationJob(request, timeout=self._deadlines.of(context))


class TaskGateway(task_service_pb2_grpc.TaskServiceServicer):
    def __init__(self, auth: Authenticator, tasks: task_service_pb2_grpc.TaskServiceStub, deadlines: Deadlines) -> None:
        self._auth = auth
        self._tasks = tasks
        self._deadlines = deadlines

    def _in_project(self, context: grpc.ServicerContext, project_id: str) -> None:
        self._auth.principal(context).require_project(project_id)

    def _in_parent(self, request, context) -> None:
        self._in_project(context, project_of_parent(request.parent))

    def ListStagedTexts(self, request, context):
        self._in_parent(request, context)
        return self._tasks.ListStagedTexts(request, timeout=self._deadlines.of(context))

    def GetStagedText(self, request, context):
        self._in_project(context, project_of_child(request.name, "stagedTexts"))
        return self._tasks.GetStagedText(request, timeout=self._deadlines.of(context))

    def UpdateStagedText(self, request: task_pb.UpdateStagedTextRequest, context):
        self._in_project(context, project_of_child(request.staged_text.name, "stagedTexts", "staged_text.name"))
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
        self._in_project(context, project_of_child(request.name, "tasks"))
        return self._tasks.GetTask(request, timeout=self._deadlines.of(context))

    def UpdateTask(self, request: task_pb.UpdateTaskRequest, context):
        self._in_project(context, project_of_child(request.task.name, "tasks", "task.name"))
        return self._tasks.UpdateTask(request, timeout=self._deadlines.of(context))

    def ExportStagedTexts(self, request, context):
        self._in_parent(request, context)
        yield from _relay(self._tasks.ExportStagedTexts(request, timeout=self._deadlines.of_stream(context)), context)
