"""Protos to domain values and back: requests are checked field by field (each
refusal names its field) and become records; records become the API's messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.runtime.errors import InvalidArgument
from services.task_store import spans, validation
from services.task_store.export import ExportFormat, ExportOptions
from services.task_store.records import (
    EntityBalance,
    EntityLabel,
    GeneratedText,
    Job,
    JobError,
    JobState,
    NewJob,
    Prediction,
    PromptVariable,
    SlotResult,
    Span,
    StagedText,
    Task,
    TextFilter,
    TextState,
)
from services.vocabulary import etags, labels, limits, names

MAX_FAILURE_MESSAGE = 10_000
_CONTROL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

_State = TypeVar("_State", JobState, TextState)


# -- requests to domain values -------------------------------------------------------------


def ref_key(ref: names.ResourceName) -> tuple[str, str]:
    return ref.project, ref.id


def parse_new_job(project: str, job: generation_pb2.GenerationJob, request_id: str) -> NewJob:
    field = "generation_job"
    variables = []
    seen_names: set[str] = set()
    for index, variable in enumerate(job.variables):
        name = validation.variable_name(variable.name, field=f"{field}.variables[{index}].name")
        if name in seen_names:
            raise InvalidArgument.field(f"{field}.variables[{index}].name", f"repeats the variable {name!r}")
        seen_names.add(name)
        variables.append(
            PromptVariable(
                name, validation.variable_values(variable.values, field=f"{field}.variables[{index}].values")
            )
        )
    label_violations = labels.violations(
        [(label.name, label.description) for label in job.labels],
        job.variable_labels,
        seen_names,
        field=field,
    )
    if label_violations:
        raise InvalidArgument(label_violations)
    return NewJob(
        project=project,
        request_id=validation.short_string(request_id, field="request_id", limit=limits.MAX_REQUEST_ID_CHARS),
        prompt=validation.prompt(job.prompt, field=f"{field}.prompt"),
        system_prompt=validation.prompt(job.system_prompt, field=f"{field}.system_prompt", optional=True),
        temperature=validation.temperature(job.temperature, field=f"{field}.temperature"),
        text_count=validation.text_count(job.text_count, field=f"{field}.text_count"),
        provider=validation.provider(job.provider, field=f"{field}.provider"),
        model=validation.short_string(job.model, field=f"{field}.model", limit=limits.MAX_MODEL_CHARS),
        max_output_tokens=validation.at_most(
            validation.non_negative(job.max_output_tokens, field=f"{field}.max_output_tokens"),
            limits.MAX_OUTPUT_TOKENS,
            field=f"{field}.max_output_tokens",
        ),
        seed=job.seed if job.HasField("seed") else None,
        tags=validation.tags(job.tags, field=f"{field}.tags"),
        variables=tuple(variables),
        unique=job.unique,
        labels=tuple(EntityLabel(label.name, label.description) for label in job.labels),
        variable_labels=dict(job.variable_labels),
    )


def populated_fields(message: Message, fields: tuple[str, ...]) -> list[str]:
    """The fields of `message` that hold a non-empty value (AIP-134's implied mask)."""
    return [name for name in fields if getattr(message, name)]


def parse_slot_results(results: Sequence[job_store_pb2.SlotResult]) -> list[SlotResult]:
    converted: list[SlotResult] = []
    first_index: dict[int, int] = {}
    for index, result in enumerate(results):
        field = f"results[{index}]"
        if result.slot in first_index:
            raise InvalidArgument.field(f"{field}.slot", f"repeats the slot of results[{first_index[result.slot]}]")
        first_index[result.slot] = index
        if result.slot < 0:
            raise InvalidArgument.field(f"{field}.slot", "must not be negative")
        outcome = result.WhichOneof("outcome")
        if outcome == "text":
            converted.append(
                SlotResult(
                    result.slot,
                    text=_generated_text(result.text, f"{field}.text"),
                    reject_duplicate=result.reject_duplicate,
                )
            )
        elif outcome == "failure":
            converted.append(SlotResult(result.slot, failure=parse_job_error(result.failure, field=f"{field}.failure")))
        else:
            raise InvalidArgument.field(field, "must hold a text or a failure")
    return converted


def _generated_text(text: job_store_pb2.GeneratedText, field: str) -> GeneratedText:
    latency = text.latency
    if latency.seconds < 0 or latency.nanos < 0:
        raise InvalidArgument.field(f"{field}.latency", "must not be negative")
    body = validation.generated_text(text.text, field=f"{field}.text")
    return GeneratedText(
        text=body,
        model=validation.short_string(text.model, field=f"{field}.model"),
        prompt_tokens=validation.non_negative(text.prompt_tokens, field=f"{field}.prompt_tokens"),
        completion_tokens=validation.non_negative(text.completion_tokens, field=f"{field}.completion_tokens"),
        finish_reason=validation.short_string(text.finish_reason, field=f"{field}.finish_reason"),
        latency_us=latency.ToMicroseconds(),
        generate_time=text.generate_time.ToDatetime(tzinfo=UTC) if text.HasField("generate_time") else None,
        variables=validation.variables_map(dict(text.variables), field=f"{field}.variables"),
        # Shape only here; the labels are checked against the job's once it is locked.
        spans=spans.checked(body, span_records(text.spans), field=f"{field}.spans"),
        dropped_spans=validation.non_negative(text.dropped_spans, field=f"{field}.dropped_spans"),
    )


def span_records(given: Sequence[task_pb2.Span]) -> list[Span]:
    """Spans of a request as records; `needs_review` is output only and ignored."""
    return [Span(span.start, span.end, span.label, span.text) for span in given]


def parse_job_error(error: generation_pb2.JobError, *, field: str) -> JobError:
    try:
        reason = generation_pb2.FailureReason.Name(error.reason)
    except ValueError:
        raise InvalidArgument.field(f"{field}.reason", f"{error.reason} is not a FailureReason") from None
    if error.reason == generation_pb2.FAILURE_REASON_UNSPECIFIED:
        raise InvalidArgument.field(f"{field}.reason", "must say why (FAILURE_REASON_UNSPECIFIED is not a reason)")
    message = validation.no_nul(error.message, field=f"{field}.message")
    if len(message) > MAX_FAILURE_MESSAGE:
        raise InvalidArgument.field(f"{field}.message", f"must be at most {MAX_FAILURE_MESSAGE} characters")
    return JobError(reason.removeprefix("FAILURE_REASON_"), message)


def parse_text_filter(given: task_pb2.StagedTextFilter, project: str, *, field: str) -> TextFilter:
    return TextFilter(
        job_id=(
            names.parse_job(given.generation_job, field=f"{field}.generation_job", project=project).id
            if given.generation_job
            else None
        ),
        state=parse_state_filter(given.state, task_pb2.StagedTextState, TextState, field=f"{field}.state"),
        tag=validation.tag(given.tag, field=f"{field}.tag") if given.tag else None,
        duplicate=given.duplicate if given.HasField("duplicate") else None,
        query=validation.query(given.query, field=f"{field}.query") or None,
    )


def parse_batch_targets(parent: str, given_names: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """The parent's project and (field, id) of each named staged text, all in that project."""
    project = names.parse_project(parent, field="parent")
    if not given_names:
        raise InvalidArgument.field("names", "must name at least one staged text")
    validation.batch_size(len(given_names), field="names")
    targets = [
        (f"names[{index}]", names.parse_staged_text(name, field=f"names[{index}]", project=project).id)
        for index, name in enumerate(given_names)
    ]
    return project, targets


def parse_state_filter(
    value: int, proto_enum: EnumTypeWrapper, domain_enum: type[_State], *, field: str
) -> _State | None:
    """The domain state for a proto state enum value; None for the UNSPECIFIED zero."""
    try:
        name = proto_enum.Name(value)
    except ValueError:
        raise InvalidArgument.field(field, f"{value} is not a {proto_enum.DESCRIPTOR.name}") from None
    if value == 0:
        return None
    prefix = proto_enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return domain_enum(name.removeprefix(prefix))


def parse_export_format(value: int) -> ExportFormat:
    try:
        name = task_pb2.ExportFormat.Name(value)
    except ValueError:
        raise InvalidArgument.field(
            "format",
            f"{value} is not an ExportFormat; use EXPORT_FORMAT_CSV, EXPORT_FORMAT_JSON, EXPORT_FORMAT_JSONL"
            " or EXPORT_FORMAT_LABEL_STUDIO",
        ) from None
    if value == task_pb2.EXPORT_FORMAT_UNSPECIFIED:
        return ExportFormat.CSV
    return ExportFormat[name.removeprefix("EXPORT_FORMAT_")]


def parse_export_options(given: task_pb2.ExportOptions, *, field: str) -> ExportOptions:
    defaults = ExportOptions()
    return ExportOptions(
        from_name=_control_name(given.label_studio_from_name, field=f"{field}.label_studio_from_name")
        or defaults.from_name,
        to_name=_control_name(given.label_studio_to_name, field=f"{field}.label_studio_to_name") or defaults.to_name,
        formula_guard=given.csv_formula_guard if given.HasField("csv_formula_guard") else defaults.formula_guard,
    )


def _control_name(value: str, *, field: str) -> str:
    """A tag name of a Label Studio labeling config: it lands in an XML attribute and in
    every result, so only a plain identifier is accepted."""
    if value and not _CONTROL_NAME.fullmatch(value):
        raise InvalidArgument.field(field, "must be a name like label or ner_1: a letter, then letters, digits, _ or -")
    return value


# -- records to protos -----------------------------------------------------------------------


def job_state_proto(state: JobState) -> str:
    """The enum's label: message constructors take labels and refuse unknown ones."""
    return f"GENERATION_JOB_STATE_{state.value}"


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def entity_balance_proto(scope: str, balance: EntityBalance) -> generation_pb2.EntityBalance:
    """GetEntityBalance's answer, and what a watch of a labelled job shows on each event."""
    return generation_pb2.EntityBalance(
        scope=scope,
        texts=balance.texts,
        spans=balance.spans,
        dropped_spans=balance.dropped_spans,
        labels=[
            generation_pb2.LabelBalance(label=item.label, texts=item.texts, spans=item.spans) for item in balance.labels
        ],
        variable_values=[
            generation_pb2.VariableValueBalance(
                variable=item.variable, value=item.value, labels=item.labels, texts=item.texts, spans=item.spans
            )
            for item in balance.values
        ],
    )


def job_proto(job: Job) -> generation_pb2.GenerationJob:
    message = generation_pb2.GenerationJob(
        name=names.job_name(job.project, job.id),
        prompt=job.prompt,
        system_prompt=job.system_prompt,
        temperature=job.temperature,
        text_count=job.text_count,
        provider=job.provider,
        model=job.model,
        max_output_tokens=job.max_output_tokens,
        tags=job.tags,
        variables=[generation_pb2.PromptVariable(name=v.name, values=v.values) for v in job.variables],
        unique=job.unique,
        labels=[generation_pb2.EntityLabel(name=label.name, description=label.description) for label in job.labels],
        variable_labels=job.variable_labels,
        state=job_state_proto(job.state),
        counts=generation_pb2.JobCounts(
            requested=job.text_count,
            produced=job.produced,
            failed=job.failed,
            duplicates=job.duplicates,
            dropped_spans=job.dropped_spans,
        ),
        usage=generation_pb2.TokenUsage(prompt_tokens=job.prompt_tokens, completion_tokens=job.completion_tokens),
        create_time=_timestamp(job.create_time),
        update_time=_timestamp(job.update_time),
        request_id=job.request_id,
        prompt_hash=job.prompt_hash,
        etag=etags.etag(job.version),
    )
    if job.seed is not None:
        message.seed = job.seed
    if job.error is not None:
        message.error.CopyFrom(
            generation_pb2.JobError(reason=f"FAILURE_REASON_{job.error.reason}", message=job.error.message)
        )
    if job.start_time is not None:
        message.start_time.CopyFrom(_timestamp(job.start_time))
    if job.end_time is not None:
        message.end_time.CopyFrom(_timestamp(job.end_time))
    return message


def staged_text_proto(text: StagedText) -> task_pb2.StagedText:
    latency = Duration()
    latency.FromMicroseconds(text.latency_us)
    lineage = task_pb2.Lineage(
        generation_job=names.job_name(text.project, text.job_id),
        provider=text.provider,
        model=text.model,
        temperature=text.temperature,
        variables=text.variables,
        prompt_hash=text.prompt_hash,
        prompt_tokens=text.prompt_tokens,
        completion_tokens=text.completion_tokens,
        finish_reason=text.finish_reason,
        latency=latency,
        slot=text.slot,
    )
    if text.seed is not None:
        lineage.seed = text.seed
    if text.generate_time is not None:
        lineage.generate_time.CopyFrom(_timestamp(text.generate_time))
    return task_pb2.StagedText(
        name=names.staged_text_name(text.project, text.id),
        text=text.text,
        original_text=text.original_text,
        tags=text.tags,
        state=f"STAGED_TEXT_STATE_{text.state.value}",
        duplicate=text.duplicate,
        lineage=lineage,
        task=names.task_name(text.project, text.task_id) if text.task_id else "",
        etag=etags.etag(text.version),
        create_time=_timestamp(text.create_time),
        update_time=_timestamp(text.update_time),
        spans=[span_proto(span) for span in text.spans],
    )


def span_proto(span: Span) -> task_pb2.Span:
    return task_pb2.Span(
        start=span.start, end=span.end, label=span.label, text=span.text, needs_review=span.needs_review
    )


def prediction_proto(project: str, prediction: Prediction) -> task_pb2.Prediction:
    return task_pb2.Prediction(
        model_version=prediction.model_version,
        job=names.job_name(project, prediction.job_id),
        spans=[span_proto(span) for span in prediction.spans],
    )


def task_proto(task: Task) -> task_pb2.Task:
    return task_pb2.Task(
        name=names.task_name(task.project, task.id),
        text=task.text,
        tags=task.tags,
        source_staged_text=names.staged_text_name(task.project, task.staged_text_id) if task.staged_text_id else "",
        generation_job=names.job_name(task.project, task.job_id) if task.job_id else "",
        create_time=_timestamp(task.create_time),
        etag=etags.etag(task.version),
        predictions=[prediction_proto(task.project, prediction) for prediction in task.predictions],
    )
