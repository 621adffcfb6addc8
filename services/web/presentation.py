"""How API values read on a page: enum labels, times, resource ids. Jinja filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

_ENUMS: dict[str, tuple[Any, str]] = {
    "job_state": (gen_pb.GenerationJobState, "GENERATION_JOB_STATE_"),
    "failure": (gen_pb.FailureReason, "FAILURE_REASON_"),
    "text_state": (task_pb.StagedTextState, "STAGED_TEXT_STATE_"),
    "validation": (provider_pb.ValidationState, "VALIDATION_STATE_"),
    "kind": (provider_pb.ProviderKind, "PROVIDER_KIND_"),
    "role": (token_pb.TokenRole, "TOKEN_ROLE_"),
}
FINISHED_JOB_STATES = frozenset(
    {
        gen_pb.GENERATION_JOB_STATE_SUCCEEDED,
        gen_pb.GENERATION_JOB_STATE_FAILED,
        gen_pb.GENERATION_JOB_STATE_CANCELLED,
    }
)


def label(value: int, enum: str) -> str:
    """`GENERATION_JOB_STATE_RUNNING` → `running`; the zero value reads as `—`."""
    wrapper, prefix = _ENUMS[enum]
    if value == 0:
        return "—"
    try:
        name = wrapper.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower().replace("_", " ")


def when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "—"
    return datetime.fromtimestamp(stamp.seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def leaf(name: str) -> str:
    """The last segment of a resource name: `projects/p/stagedTexts/abc` → `abc`."""
    return name.rsplit("/", 1)[-1]


def job_summary(job: gen_pb.GenerationJob, balance: gen_pb.EntityBalance | None = None) -> dict[str, Any]:
    """What the live job view shows, as JSON for its script; `balance` for a job with labels."""
    elapsed = 0.0
    if job.start_time.seconds:
        end = job.end_time.seconds if job.end_time.seconds else datetime.now(tz=UTC).timestamp()
        elapsed = max(0.0, end - job.start_time.seconds)
    produced = job.counts.produced
    return {
        # No progress for the gateway's stall threshold: waiting for workers, or lost work
        # the gateway enqueues again.
        "state": label(job.state, "job_state") + (", stalled" if job.stalled else ""),
        "finished": job.state in FINISHED_JOB_STATES,
        "requested": job.counts.requested,
        "produced": produced,
        "failed": job.counts.failed,
        "duplicates": job.counts.duplicates,
        "prompt_tokens": job.usage.prompt_tokens,
        "completion_tokens": job.usage.completion_tokens,
        "rate": f"{produced * 60 / elapsed:.1f} texts/min" if elapsed > 0 and produced else "—",
        "error": job.error.message,
        "entity_balance": balance_line(balance) if balance is not None else "",
    }


def balance_line(balance: gen_pb.EntityBalance) -> str:
    """Texts and spans per label, and the entities that could not be located, in one line."""
    labels = " · ".join(f"{item.label} {item.texts} texts, {item.spans} spans" for item in balance.labels)
    return f"{labels} · {balance.dropped_spans} dropped"


def text_summary(text: task_pb.StagedText) -> dict[str, Any]:
    """A new staged text for the live job view. Sent as JSON and inserted with
    textContent by the script, so markup in a model's answer stays text."""
    return {
        "id": leaf(text.name),
        "text": text.text,
        "tags": list(text.tags),
        "duplicate": text.duplicate,
        "variables": dict(text.lineage.variables),
    }


FILTERS = {"label": label, "when": when, "leaf": leaf}
