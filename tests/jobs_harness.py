"""Helpers for tests that run generation jobs: providers and jobs made through the real
gateway of the suite's stack (tests/stack.py), and real `synthtasks-worker` processes.

The fake provider is the stack's in-process FakeOpenAIServer, reset for each test by the
`fake_llm` fixture; every test uses a project and a provider of its own, so limits and
duplicate detection never leak between tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb

from synthtasks_fake_llm import FakeOpenAIServer
from tests.leak_watch import new_key
from tests.stack import Clients, Stack, WorkerProcess, running_workers

TERMINAL = {
    gen_pb.GENERATION_JOB_STATE_SUCCEEDED,
    gen_pb.GENERATION_JOB_STATE_FAILED,
    gen_pb.GENERATION_JOB_STATE_CANCELLED,
}
# Worker settings for tests: short backoffs and short-lived leases, so faults cost seconds.
WORKER_ENV = {
    "SYNTHTASKS_WORKER_BACKOFF_MAX_SECONDS": "1",
    "SYNTHTASKS_WORKER_LEASE_TTL_SECONDS": "3",
    "SYNTHTASKS_LOG_LEVEL": "INFO",
}
READY_LINE = "Worker process is ready for action."


@dataclass
class Generation:
    """The public API of the stack, as the admin, plus what tests check afterwards."""

    stack: Stack
    fake: FakeOpenAIServer
    clients: Clients

    def new_project(self) -> str:
        return f"gw-{uuid.uuid4().hex[:10]}"

    def provider(
        self,
        project: str,
        kind: str = "openai",
        *,
        key: str | None = None,
        max_choices: int = 1,
        requests_per_minute: int = 0,
        max_concurrent: int = 0,
        request_timeout_seconds: float | None = None,
    ) -> pb.Provider:
        """Create a provider on the fake server and make it the project's default."""
        fields: dict = {
            "display_name": f"{kind}-{uuid.uuid4().hex[:8]}",
            # The fake accepts any key unless a test configures api_keys.
            "api_key": new_key() if key is None else key,
            "max_choices_per_request": max_choices,
            "limits": pb.ProviderLimits(
                requests_per_minute=requests_per_minute, max_concurrent_requests=max_concurrent
            ),
        }
        if kind == "openai":
            fields.update(kind=pb.PROVIDER_KIND_OPENAI, endpoint=self.fake.openai_base_url, model="gpt-4o-mini")
        elif kind == "azure":
            fields.update(
                kind=pb.PROVIDER_KIND_AZURE_OPENAI,
                endpoint=self.fake.base_url,
                deployment="gpt4o-deploy",
                api_version="2024-06-01",
            )
        elif kind == "compatible":
            fields.update(
                kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE, endpoint=self.fake.openai_base_url, model="gpt-4o-mini"
            )
        else:
            raise ValueError(kind)
        if request_timeout_seconds is not None:
            fields["request_timeout"] = duration_pb2.Duration(
                seconds=int(request_timeout_seconds), nanos=int(request_timeout_seconds % 1 * 1e9)
            )
        created = self.clients.providers.CreateProvider(
            pb.CreateProviderRequest(provider=pb.Provider(**fields)), timeout=10
        )
        self.clients.providers.AssignProvider(
            pb.AssignProviderRequest(project=f"projects/{project}", provider=created.provider.name, default=True),
            timeout=10,
        )
        return created.provider

    def start(self, project: str, text_count: int, **fields) -> gen_pb.GenerationJob:
        job = gen_pb.GenerationJob(
            prompt=fields.pop("prompt", "Write one sentence for a test."), text_count=text_count, **fields
        )
        return self.clients.generation.CreateGenerationJob(
            gen_pb.CreateGenerationJobRequest(
                parent=f"projects/{project}", generation_job=job, request_id=uuid.uuid4().hex
            ),
            timeout=10,
        ).generation_job

    def get(self, name: str) -> gen_pb.GenerationJob:
        return self.clients.generation.GetGenerationJob(
            gen_pb.GetGenerationJobRequest(name=name), timeout=10
        ).generation_job

    def wait(self, name: str, timeout: float = 60) -> gen_pb.GenerationJob:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(name)
            if job.state in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job not done after {timeout}s: {job.state=} {job.counts}")
            time.sleep(0.1)

    def wait_until(self, name: str, predicate, timeout: float = 30) -> gen_pb.GenerationJob:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(name)
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met after {timeout}s: {job.state=} {job.counts}")
            time.sleep(0.05)

    def cancel(self, name: str) -> gen_pb.GenerationJob:
        return self.clients.generation.CancelGenerationJob(
            gen_pb.CancelGenerationJobRequest(name=name), timeout=10
        ).generation_job

    def staged(self, job: gen_pb.GenerationJob) -> list[task_pb.StagedText]:
        parent = job.name.split("/generationJobs/")[0]
        texts: list[task_pb.StagedText] = []
        token = ""
        while True:
            page = self.clients.tasks.ListStagedTexts(
                task_pb.ListStagedTextsRequest(
                    parent=parent,
                    page_size=500,
                    page_token=token,
                    filter=task_pb.StagedTextFilter(generation_job=job.name),
                ),
                timeout=10,
            )
            texts.extend(page.staged_texts)
            token = page.next_page_token
            if not token:
                return texts


def wait_until_ready(workers: list[WorkerProcess], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {worker.process.returncode}: {worker.log_path.read_text()[-3000:]}"
                )
        if all(READY_LINE in worker.log_path.read_text(errors="replace") for worker in workers):
            return
        time.sleep(0.1)
    raise AssertionError("workers not ready: " + " | ".join(w.log_path.read_text()[-2000:] for w in workers))


@contextlib.contextmanager
def started_workers(stack: Stack, log_dir: Path, count: int, **env: str) -> Iterator[list[WorkerProcess]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with running_workers(stack, log_dir, count=count, extra_env={**WORKER_ENV, **env}) as workers:
        wait_until_ready(workers)
        yield workers


def log_dir_for(suite_log, request: pytest.FixtureRequest) -> Path:
    """A folder of the suite's log collection (scanned for leaked keys) for this module's workers."""
    return Path(suite_log.folder) / f"workers-{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:6]}"


def status_code(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK
