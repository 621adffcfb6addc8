"""synthtasks_jobs_total counts each job once per state, although a job's creation passes
through the gateway and the task store (both in this process, on one registry)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY
from synthtasks.v1 import generation_service_pb2 as gen_pb

from tests.jobs_harness import Generation


def jobs_counted(state: str) -> float:
    return REGISTRY.get_sample_value("synthtasks_jobs_total", {"state": state}) or 0.0


def test_a_job_is_counted_once_when_created_and_once_when_cancelled(generation: Generation) -> None:
    project = generation.new_project()
    generation.provider(project)
    created, cancelled = jobs_counted("created"), jobs_counted("cancelled")
    request = gen_pb.CreateGenerationJobRequest(
        parent=f"projects/{project}",
        generation_job=gen_pb.GenerationJob(prompt="Write one sentence for a test.", text_count=2),
        request_id=uuid.uuid4().hex,
    )

    job = generation.clients.generation.CreateGenerationJob(request, timeout=10).generation_job
    assert jobs_counted("created") == created + 1

    # The same request again returns the same job: it is not counted again.
    again = generation.clients.generation.CreateGenerationJob(request, timeout=10).generation_job
    assert again.name == job.name
    assert jobs_counted("created") == created + 1

    assert generation.cancel(job.name).state == gen_pb.GENERATION_JOB_STATE_CANCELLED
    assert jobs_counted("cancelled") == cancelled + 1
