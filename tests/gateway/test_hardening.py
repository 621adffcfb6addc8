"""Regression tests of #13 at the gateway: who is calling comes before name rules,
cancels leave nothing behind for jobs that are not there, request ids hold under races
(AIP-155), and replies stay small whatever the input."""

from __future__ import annotations

import base64
import threading
import uuid

import grpc
import pytest
import redis
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.generation_queue.backlog import backlog_key
from tests.rich_status import error_info_reason, field_violations


@pytest.fixture
def project(generation) -> str:
    name = generation.new_project()
    generation.provider(name, "compatible")
    return name


def rejected(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def _redis(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.gateway_settings.redis_url)


def keys_of_project(stack, project: str) -> list[bytes]:
    """Every Redis key of this run that names the project (stop flags name the job)."""
    client = _redis(stack)
    try:
        return list(client.scan_iter(match=f"{stack.gateway_settings.redis_namespace}*projects/{project}/*"))
    finally:
        client.close()


def queued_messages_of(stack, job_name: str) -> int:
    """Messages that name the job, waiting in the fair backlog or in Dramatiq's queues
    (dramatiq keeps their bodies in `<queue>.msgs` hashes)."""
    client = _redis(stack)
    namespace = stack.gateway_settings.redis_namespace
    try:
        keys = [backlog_key(namespace), *client.scan_iter(match=f"{namespace}:*.msgs")]
        return sum(job_name.encode() in body for key in keys for body in client.hvals(key))
    finally:
        client.close()


BAD_NAME = "projects/Not A Project!"
CALLS_WITHOUT_TOKEN = {
    "CreateGenerationJob": lambda c: c.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(parent=BAD_NAME), timeout=10
    ),
    "GetGenerationJob": lambda c: c.generation.GetGenerationJob(gen_pb.GetGenerationJobRequest(name=BAD_NAME)),
    "ListGenerationJobs": lambda c: c.generation.ListGenerationJobs(gen_pb.ListGenerationJobsRequest(parent=BAD_NAME)),
    "WatchGenerationJob": lambda c: list(
        c.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=BAD_NAME), timeout=10)
    ),
    "CancelGenerationJob": lambda c: c.generation.CancelGenerationJob(gen_pb.CancelGenerationJobRequest(name=BAD_NAME)),
    "ListStagedTexts": lambda c: c.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent=BAD_NAME)),
    "GetStagedText": lambda c: c.tasks.GetStagedText(task_pb.GetStagedTextRequest(name=BAD_NAME)),
    "UpdateStagedText": lambda c: c.tasks.UpdateStagedText(
        task_pb.UpdateStagedTextRequest(staged_text=task_pb.StagedText(name=BAD_NAME))
    ),
    "DiscardStagedTexts": lambda c: c.tasks.DiscardStagedTexts(task_pb.DiscardStagedTextsRequest(parent=BAD_NAME)),
    "RestoreStagedTexts": lambda c: c.tasks.RestoreStagedTexts(task_pb.RestoreStagedTextsRequest(parent=BAD_NAME)),
    "ImportStagedTexts": lambda c: c.tasks.ImportStagedTexts(task_pb.ImportStagedTextsRequest(parent=BAD_NAME)),
    "ListTasks": lambda c: c.tasks.ListTasks(task_pb.ListTasksRequest(parent=BAD_NAME)),
    "GetTask": lambda c: c.tasks.GetTask(task_pb.GetTaskRequest(name=BAD_NAME)),
    "UpdateTask": lambda c: c.tasks.UpdateTask(task_pb.UpdateTaskRequest(task=task_pb.Task(name=BAD_NAME))),
    "ExportStagedTexts": lambda c: list(
        c.tasks.ExportStagedTexts(task_pb.ExportStagedTextsRequest(parent=BAD_NAME), timeout=10)
    ),
}


@pytest.mark.parametrize("call", CALLS_WITHOUT_TOKEN.values(), ids=CALLS_WITHOUT_TOKEN.keys())
def test_a_caller_without_a_token_is_unauthenticated_before_any_name_rule(stack, call):
    assert rejected(lambda: call(stack.clients(None))).code() == grpc.StatusCode.UNAUTHENTICATED
    # The control: an authenticated caller gets the name rule.
    assert rejected(lambda: call(stack.admin())).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_cancel_of_a_missing_or_malformed_job_leaves_no_stop_flag(stack, generation, project):
    missing = f"projects/{project}/generationJobs/{uuid.uuid4().hex}"
    malformed = f"projects/{project}/generationJobs/not-an-id"

    assert rejected(lambda: generation.cancel(missing)).code() == grpc.StatusCode.NOT_FOUND
    assert rejected(lambda: generation.cancel(malformed)).code() == grpc.StatusCode.INVALID_ARGUMENT
    assert keys_of_project(stack, project) == []

    # The control: cancelling a job that exists raises its flag.
    job = generation.start(project, 2)
    assert generation.cancel(job.name).state == gen_pb.GENERATION_JOB_STATE_CANCELLED
    assert any(job.name.encode() in key for key in keys_of_project(stack, project))


def test_a_cancel_of_an_ended_job_leaves_no_stop_flag(stack, generation, project):
    job = generation.start(project, 2)
    generation.cancel(job.name)
    client = _redis(stack)
    try:
        for key in keys_of_project(stack, project):
            client.delete(key)
    finally:
        client.close()

    assert generation.cancel(job.name).state == gen_pb.GENERATION_JOB_STATE_CANCELLED, "idempotent"
    assert keys_of_project(stack, project) == []


def test_concurrent_creates_with_one_request_id_return_one_job_enqueued_once(stack, generation, project):
    request = gen_pb.CreateGenerationJobRequest(
        parent=f"projects/{project}",
        generation_job=gen_pb.GenerationJob(prompt="Write a sentence.", text_count=12, temperature=1),
        request_id=uuid.uuid4().hex,
    )
    callers = 6
    barrier = threading.Barrier(callers)
    names: list[str] = []

    def create() -> None:
        barrier.wait(timeout=30)
        names.append(generation.clients.generation.CreateGenerationJob(request, timeout=30).generation_job.name)

    threads = [threading.Thread(target=create) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(names) == callers and len(set(names)) == 1
    # 12 slots fit one message: enqueued by exactly one of the callers.
    assert queued_messages_of(stack, names[0]) == 1
    generation.cancel(names[0])


def test_a_reused_request_id_with_a_different_request_is_already_exists_and_enqueues_nothing(
    stack, generation, project
):
    request_id = uuid.uuid4().hex
    first = generation.clients.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(
            parent=f"projects/{project}",
            generation_job=gen_pb.GenerationJob(prompt="Write a sentence.", text_count=3, temperature=1),
            request_id=request_id,
        ),
        timeout=10,
    ).generation_job
    different = gen_pb.CreateGenerationJobRequest(
        parent=f"projects/{project}",
        generation_job=gen_pb.GenerationJob(prompt="Write a poem.", text_count=3, temperature=1),
        request_id=request_id,
    )

    error = rejected(lambda: generation.clients.generation.CreateGenerationJob(different, timeout=10))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info_reason(error) == "REQUEST_ID_REUSED"
    assert first.name in error.details()
    assert queued_messages_of(stack, first.name) == 1
    generation.cancel(first.name)


def test_a_huge_prompt_placeholder_gets_a_small_invalid_argument(generation, project):
    job = gen_pb.GenerationJob(prompt="About {" + "x" * 7000 + "!}.", text_count=1, temperature=1)
    error = rejected(
        lambda: generation.clients.generation.CreateGenerationJob(
            gen_pb.CreateGenerationJobRequest(parent=f"projects/{project}", generation_job=job), timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["generation_job.prompt"]
    assert len(error.details()) < 1000


def test_a_deeply_nested_page_token_from_a_project_token_is_invalid_argument(stack, generation, project):
    secret = (
        stack.admin()
        .tokens.CreateToken(
            token_pb.CreateTokenRequest(
                token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[f"projects/{project}"])
            )
        )
        .secret
    )
    member = stack.clients(secret)
    bomb = base64.urlsafe_b64encode(b"[" * 50_000).decode().rstrip("=")
    parent = f"projects/{project}"
    for call in (
        lambda: member.generation.ListGenerationJobs(gen_pb.ListGenerationJobsRequest(parent=parent, page_token=bomb)),
        lambda: member.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent=parent, page_token=bomb)),
        lambda: member.tasks.ListTasks(task_pb.ListTasksRequest(parent=parent, page_token=bomb)),
    ):
        error = rejected(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(error)] == ["page_token"]
    assert member.tasks.ListTasks(task_pb.ListTasksRequest(parent=parent)).tasks == [], "the control"
