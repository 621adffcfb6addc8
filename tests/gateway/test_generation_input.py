"""Bad CreateGenerationJob input is refused by the gateway naming the field, with no job
recorded and nothing enqueued."""

from __future__ import annotations

import grpc
import pytest
import redis
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.generation_queue.backlog import Backlog
from tests.rich_status import error_info_reason, field_violations

VARIABLE = gen_pb.PromptVariable
LABEL = gen_pb.EntityLabel
DRUG_JOB = {"prompt": "About {drug}.", "variables": [VARIABLE(name="drug", values=["a"])]}


@pytest.fixture
def project(generation) -> str:
    name = generation.new_project()
    generation.provider(name, "compatible")
    return name


def job_count(generation, project: str) -> int:
    return len(
        generation.clients.generation.ListGenerationJobs(
            gen_pb.ListGenerationJobsRequest(parent=f"projects/{project}", page_size=1000)
        ).generation_jobs
    )


def queue_length(stack) -> int:
    """Ranges enqueued and not yet taken by a worker: in the fair backlog or the Dramatiq queue."""
    client = redis.Redis.from_url(stack.gateway_settings.redis_url)
    try:
        backlog = Backlog(client, stack.gateway_settings.redis_namespace)
        return backlog.size() + backlog.queue_length()
    finally:
        client.close()


def refused(generation, project: str, **fields) -> grpc.RpcError:
    job = gen_pb.GenerationJob(**{"prompt": "Write a sentence.", "text_count": 3, "temperature": 0.7, **fields})
    with pytest.raises(grpc.RpcError) as raised:
        generation.clients.generation.CreateGenerationJob(
            gen_pb.CreateGenerationJobRequest(parent=f"projects/{project}", generation_job=job, request_id="r1"),
            timeout=10,
        )
    return raised.value


BAD_JOBS = [
    ("empty prompt", {"prompt": "   "}, "generation_job.prompt"),
    ("overlong prompt", {"prompt": "x" * 20_001}, "generation_job.prompt"),
    ("overlong system prompt", {"system_prompt": "x" * 20_001}, "generation_job.system_prompt"),
    ("temperature below 0", {"temperature": -0.1}, "generation_job.temperature"),
    ("temperature above 2", {"temperature": 2.5}, "generation_job.temperature"),
    ("temperature not a number", {"temperature": float("nan")}, "generation_job.temperature"),
    ("zero texts", {"text_count": 0}, "generation_job.text_count"),
    ("more texts than the maximum", {"text_count": 1001}, "generation_job.text_count"),
    ("negative output tokens", {"max_output_tokens": -1}, "generation_job.max_output_tokens"),
    ("malformed provider name", {"provider": "openai"}, "generation_job.provider"),
    ("placeholder without a variable", {"prompt": "About {drug}."}, "generation_job.prompt"),
    ("unbalanced brace", {"prompt": "About {drug."}, "generation_job.prompt"),
    (
        "variable with no values",
        {"prompt": "About {drug}.", "variables": [VARIABLE(name="drug")]},
        "generation_job.variables[0].values",
    ),
    (
        "variable not in the prompt",
        {
            "prompt": "About {drug}.",
            "variables": [VARIABLE(name="drug", values=["a"]), VARIABLE(name="dose", values=["1"])],
        },
        "generation_job.variables[1].name",
    ),
    (
        "variable declared twice",
        {
            "prompt": "About {drug}.",
            "variables": [VARIABLE(name="drug", values=["a"]), VARIABLE(name="drug", values=["b"])],
        },
        "generation_job.variables[1].name",
    ),
    ("empty tag", {"tags": [""]}, "generation_job.tags[0]"),
    ("lower-case label", {"labels": [LABEL(name="drug")]}, "generation_job.labels[0].name"),
    ("label name too long", {"labels": [LABEL(name="D" * 33)]}, "generation_job.labels[0].name"),
    ("label repeated", {"labels": [LABEL(name="DRUG"), LABEL(name="DRUG")]}, "generation_job.labels[1].name"),
    ("too many labels", {"labels": [LABEL(name=f"L{i}") for i in range(33)]}, "generation_job.labels"),
    (
        "label description too long",
        {"labels": [LABEL(name="DRUG", description="x" * 201)]},
        "generation_job.labels[0].description",
    ),
    (
        "variable bound to an unknown label",
        {**DRUG_JOB, "labels": [LABEL(name="DOSE")], "variable_labels": {"drug": "DRUG"}},
        'generation_job.variable_labels["drug"]',
    ),
    (
        "unknown variable bound to a label",
        {**DRUG_JOB, "labels": [LABEL(name="DRUG")], "variable_labels": {"dose": "DRUG"}},
        'generation_job.variable_labels["dose"]',
    ),
]


@pytest.mark.parametrize(("fields", "field"), [pytest.param(f, n, id=i) for i, f, n in BAD_JOBS])
def test_bad_generation_input_is_refused_naming_the_field_and_nothing_is_recorded_or_enqueued(
    stack, generation, project, fields, field
):
    jobs_before, queued_before = job_count(generation, project), queue_length(stack)
    error = refused(generation, project, **fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(error)], field_violations(error)
    assert job_count(generation, project) == jobs_before
    assert queue_length(stack) == queued_before


def test_a_provider_not_assigned_to_the_project_is_refused(stack, generation, project):
    elsewhere = generation.provider(generation.new_project(), "compatible")
    queued_before = queue_length(stack)
    error = refused(generation, project, provider=elsewhere.name)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_reason(error) == "PROVIDER_NOT_ASSIGNED"
    assert "generation_job.provider" in error.details()
    assert job_count(generation, project) == 0
    assert queue_length(stack) == queued_before


def test_an_unknown_provider_is_refused(generation, project):
    error = refused(generation, project, provider="providers/never-created")
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "generation_job.provider" in error.details()


def test_a_project_without_a_default_provider_must_name_one(generation):
    error = refused(generation, generation.new_project())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_reason(error) == "NO_DEFAULT_PROVIDER"


def test_the_same_request_id_returns_the_same_job_and_enqueues_once(stack, generation, project):
    request = gen_pb.CreateGenerationJobRequest(
        parent=f"projects/{project}",
        generation_job=gen_pb.GenerationJob(prompt="Write a sentence.", text_count=40, temperature=1),
        request_id="retry-me",
    )
    queued_before = queue_length(stack)
    first = generation.clients.generation.CreateGenerationJob(request, timeout=10).generation_job
    queued_after_first = queue_length(stack)
    second = generation.clients.generation.CreateGenerationJob(request, timeout=10).generation_job
    assert first.name == second.name
    ranges = -(-40 // stack.gateway_settings.slots_per_message)  # 40 slots in messages of that many
    assert queue_length(stack) == queued_after_first == queued_before + ranges
    assert job_count(generation, project) == 1
    generation.cancel(first.name)


def test_a_project_token_cannot_start_a_job_in_another_project(stack, generation, project):
    secret = (
        stack.admin()
        .tokens.CreateToken(
            token_pb.CreateTokenRequest(
                token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=["projects/elsewhere"])
            )
        )
        .secret
    )
    request = gen_pb.CreateGenerationJobRequest(
        parent=f"projects/{project}", generation_job=gen_pb.GenerationJob(prompt="x", text_count=1)
    )
    with pytest.raises(grpc.RpcError) as raised:
        stack.clients(secret).generation.CreateGenerationJob(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
