"""The task store's domain records: what the repository returns and the servicer
turns into protos. Plain dataclasses, independent of protobuf and SQL."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class TextState(enum.StrEnum):
    STAGED = "STAGED"
    IMPORTED = "IMPORTED"
    DISCARDED = "DISCARDED"


@dataclass(frozen=True)
class PromptVariable:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class EntityLabel:
    name: str
    description: str


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a text, in Python string indices (code points)."""

    start: int
    end: int
    label: str
    text: str
    # An edit of the text could not re-locate it: kept for a reviewer, left out of
    # imports and exports.
    needs_review: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "text": self.text,
            "needs_review": self.needs_review,
        }

    @classmethod
    def from_json(cls, value: dict) -> Span:
        return cls(value["start"], value["end"], value["label"], value["text"], value.get("needs_review", False))


@dataclass(frozen=True)
class Prediction:
    """Machine-made spans of a task: the model and job that made them."""

    model_version: str
    job_id: str
    spans: tuple[Span, ...]

    def as_json(self) -> dict[str, object]:
        return {"model_version": self.model_version, "job": self.job_id, "spans": [s.as_json() for s in self.spans]}

    @classmethod
    def from_json(cls, value: dict) -> Prediction:
        return cls(value["model_version"], value["job"], tuple(Span.from_json(s) for s in value["spans"]))


@dataclass(frozen=True)
class JobError:
    # A FailureReason name without its prefix ("RATE_LIMITED"), or "" for none.
    reason: str
    message: str


@dataclass(frozen=True)
class NewJob:
    """A job as the gateway asks to create it, already validated."""

    project: str
    request_id: str
    prompt: str
    system_prompt: str
    temperature: float
    text_count: int
    provider: str
    model: str
    max_output_tokens: int
    seed: int | None
    tags: tuple[str, ...]
    variables: tuple[PromptVariable, ...]
    unique: bool
    labels: tuple[EntityLabel, ...] = ()
    variable_labels: dict[str, str] = field(default_factory=dict)

    @property
    def prompt_hash(self) -> str:
        """sha256 of the system prompt and the prompt template, as lineage of every text."""
        return hashlib.sha256(f"{self.system_prompt}\n{self.prompt}".encode()).hexdigest()

    @property
    def request_hash(self) -> bytes:
        """sha256 of everything the request asks for (AIP-155: a request_id names one request)."""
        fields = dataclasses.asdict(self)
        del fields["project"], fields["request_id"]
        # Left out when empty, so a job without labels hashes as it did before labels
        # existed (a retry across the upgrade is still the same request).
        for name in ("labels", "variable_labels"):
            if not fields[name]:
                del fields[name]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).digest()


@dataclass(frozen=True)
class Job:
    id: str
    seq: int
    project: str
    request_id: str
    prompt: str
    system_prompt: str
    temperature: float
    text_count: int
    provider: str
    model: str
    max_output_tokens: int
    seed: int | None
    tags: tuple[str, ...]
    variables: tuple[PromptVariable, ...]
    unique: bool
    prompt_hash: str
    state: JobState
    produced: int
    failed: int
    duplicates: int
    prompt_tokens: int
    completion_tokens: int
    error: JobError | None
    enqueued: bool
    version: int
    create_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    update_time: datetime
    # Pre-annotation (#14): a record built without these means none.
    labels: tuple[EntityLabel, ...] = ()
    variable_labels: dict[str, str] = field(default_factory=dict)
    dropped_spans: int = 0


@dataclass(frozen=True)
class GeneratedText:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_us: int
    generate_time: datetime | None
    variables: dict[str, str]
    spans: tuple[Span, ...] = ()
    # Entities the model named that the worker could not locate in the text.
    dropped_spans: int = 0


@dataclass(frozen=True)
class SlotResult:
    """One slot's outcome as a worker reports it: exactly one of text or failure."""

    slot: int
    text: GeneratedText | None = None
    failure: JobError | None = None
    reject_duplicate: bool = False


@dataclass(frozen=True)
class SlotOutcome:
    slot: int
    written: bool
    duplicate: bool


@dataclass(frozen=True)
class AppendOutcome:
    outcomes: list[SlotOutcome]
    state: JobState
    # True when this batch filled the last slot and so ended the job.
    ended_job: bool = False


@dataclass(frozen=True)
class JobWork:
    job: Job
    filled_slots: list[int]


# Not frozen, but slotted: an export builds 100,000 of these, and a frozen dataclass
# sets each field through object.__setattr__, three times slower.
@dataclass(slots=True)
class StagedText:
    id: str
    seq: int
    project: str
    job_id: str
    slot: int
    text: str
    original_text: str
    tags: tuple[str, ...]
    state: TextState
    duplicate: bool
    task_id: str | None
    # Lineage: the job's part …
    provider: str
    temperature: float
    seed: int | None
    prompt_hash: str
    # … and the worker's.
    model: str
    variables: dict[str, str]
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_us: int
    generate_time: datetime | None
    version: int
    create_time: datetime
    update_time: datetime
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class TextFilter:
    """Shared by listing, import and export; None does not filter."""

    job_id: str | None = None
    state: TextState | None = None
    tag: str | None = None
    duplicate: bool | None = None
    query: str | None = None


@dataclass(frozen=True)
class TextChange:
    """An edit of a staged text: only the fields that are not None change."""

    text: str | None = None
    tags: tuple[str, ...] | None = None
    spans: tuple[Span, ...] | None = None


@dataclass(frozen=True)
class ImportResult:
    created_count: int
    already_imported_count: int


@dataclass(frozen=True)
class Task:
    id: str
    seq: int
    project: str
    text: str
    tags: tuple[str, ...]
    staged_text_id: str | None
    job_id: str | None
    version: int
    create_time: datetime
    update_time: datetime
    predictions: tuple[Prediction, ...] = ()


@dataclass(frozen=True)
class Page:
    """A page of rows and the keyset position after its last row (None at the end)."""

    items: list = field(default_factory=list)
    next_seq: int | None = None


# Entity balance (repository/entity_balance.py says what is counted).


@dataclass(frozen=True)
class LabelBalance:
    label: str
    texts: int
    spans: int


@dataclass(frozen=True)
class ValueBalance:
    variable: str
    value: str
    # Labels the scope's jobs bind the variable to, sorted; empty when unbound.
    labels: tuple[str, ...]
    texts: int
    spans: int


@dataclass(frozen=True)
class EntityBalance:
    texts: int
    spans: int
    dropped_spans: int
    labels: tuple[LabelBalance, ...]
    values: tuple[ValueBalance, ...]
