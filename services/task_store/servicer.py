"""gRPC servicers of the task store: requests are validated and turned into domain
values, the repository does the work, records are turned back into protos. No SQL.

The gateway authenticates and authorizes before forwarding; these servicers still
check every field they are given, naming it in INVALID_ARGUMENT, because they are the
ones that write."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.internal.v1 import job_store_service_pb2_grpc as job_store_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import generation_service_pb2_grpc as generation_grpc
from synthtasks.v1 import task_service_pb2 as task_pb2
from synthtasks.v1 import task_service_pb2_grpc as task_grpc

from services.runtime.errors import InvalidArgument
from services.task_store import quotas, spans, validation
from services.task_store.entity_balance import EntityBalanceReader
from services.task_store.errors import Unimplemented
from services.task_store.export import ExportFormat, export_chunks
from services.task_store.metrics import JOBS
from services.task_store.quotas import QuotaPolicy
from services.task_store.records import (
    EntityLabel,
    GeneratedText,
    Job,
    JobError,
    JobState,
    NewJob,
    Page,
    Prediction,
    PromptVariable,
    SlotResult,
    Span,
    StagedText,
    Task,
    TextChange,
    TextFilter,
    TextState,
)
from services.task_store.repository import Repository
from services.task_store.watch import JobEventHub, follow_job
from services.vocabulary import etags, labels, limits, names, page_tokens

MAX_FAILURE_MESSAGE = 10_000
# Stalled jobs handed out per ClaimStalledJobs call.
_MAX_CLAIMED_JOBS = 1000


class GenerationServicer(generation_grpc.GenerationServiceServicer):
    """synthtasks.v1.GenerationService, minus job creation (the gateway's, through
    JobStoreService.CreateJob)."""

    def __init__(
        self, repository: Repository, events: JobEventHub, quota_policy: QuotaPolicy, balances: EntityBalanceReader
    ) -> None:
        self._repository = repository
        self._events = events
        self._quota_policy = quota_policy
        self._balances = balances

    def CreateGenerationJob(self, request, context):
        raise Unimplemented("jobs are created through the gateway")

    def GetProjectQuota(self, request, context):
        project = names.parse_project_quota(request.name, field="name")
        limits = self._quota_policy.limits_for(project)
        usage = self._repository.quota_usage(project)
        return generation_pb2.GetProjectQuotaResponse(
            project_quota=generation_pb2.ProjectQuota(
                name=request.name,
                quotas=[
                    generation_pb2.QuotaUsage(quota=quota, limit=limits.limit_of(quota), usage=usage.usage_of(quota))
                    for quota in quotas.QUOTAS
                ],
            )
        )

    def GetEntityBalance(self, request, context):
        project, job_id = names.parse_job_or_project(request.scope, field="scope")
        if job_id is not None:
            self._repository.get_job(project, job_id)  # NOT_FOUND rather than an empty balance
        balance = self._balances.read(project, job_id)
        return generation_pb2.GetEntityBalanceResponse(
            entity_balance=generation_pb2.EntityBalance(
                scope=request.scope,
                texts=balance.texts,
                spans=balance.spans,
                dropped_spans=balance.dropped_spans,
                labels=[
                    generation_pb2.LabelBalance(label=item.label, texts=item.texts, spans=item.spans)
                    for item in balance.labels
                ],
                variable_values=[
                    generation_pb2.VariableValueBalance(
                        variable=item.variable, value=item.value, labels=item.labels, texts=item.texts, spans=item.spans
                    )
                    for item in balance.values
                ],
            )
        )

    def GetGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        return generation_pb2.GetGenerationJobResponse(
            generation_job=job_proto(self._repository.get_job(*ref_key(ref)))
        )

    def ListGenerationJobs(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        state = _state_filter(request.state, generation_pb2.GenerationJobState, JobState, field="state")
        limit = page_tokens.page_size(request.page_size)
        query = _query_key(request.parent, state.value if state else "")
        page = self._repository.list_jobs(project, state, _page_position(request.page_token, query), limit)
        return generation_pb2.ListGenerationJobsResponse(
            generation_jobs=[job_proto(job) for job in page.items], next_page_token=_next_token(page, query)
        )

    def WatchGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        previous: datetime | None = None
        for event in follow_job(
            self._repository,
            self._events,
            ref.project,
            ref.id,
            is_active=context.is_active,
            on_stop=context.add_callback,
        ):
            now = datetime.now(UTC)
            response = generation_pb2.WatchGenerationJobResponse(generation_job=job_proto(event.job))
            if event.text is not None:
                response.staged_text.CopyFrom(staged_text_proto(event.text))
            if previous is not None:
                response.since_previous.FromTimedelta(now - previous)
            previous = now
            yield response

    def CancelGenerationJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        job, cancelled = self._repository.cancel_job(*ref_key(ref))
        if cancelled:
            JOBS.labels("cancelled").inc()
        return generation_pb2.CancelGenerationJobResponse(generation_job=job_proto(job))


class TaskServicer(task_grpc.TaskServiceServicer):
    """synthtasks.v1.TaskService: review, import and export of staged texts."""

    def __init__(self, repository: Repository) -> None:
        self._repository = repository

    def ListStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        text_filter = _text_filter(request.filter, project, field="filter")
        limit = page_tokens.page_size(request.page_size)
        query = _query_key(request.parent, request.filter.SerializeToString(deterministic=True))
        page = self._repository.list_texts(project, text_filter, _page_position(request.page_token, query), limit)
        return task_pb2.ListStagedTextsResponse(
            staged_texts=[staged_text_proto(text) for text in page.items], next_page_token=_next_token(page, query)
        )

    def GetStagedText(self, request, context):
        ref = names.parse_staged_text(request.name, field="name")
        return task_pb2.GetStagedTextResponse(staged_text=staged_text_proto(self._repository.get_text(*ref_key(ref))))

    def UpdateStagedText(self, request, context):
        given = request.staged_text
        ref = names.parse_staged_text(given.name, field="staged_text.name")
        paths = validation.update_mask(
            request.update_mask.paths, allowed=("text", "tags"), populated=_populated(given, ("text", "tags"))
        )
        if not paths:
            return task_pb2.UpdateStagedTextResponse(
                staged_text=staged_text_proto(self._repository.get_text(*ref_key(ref)))
            )
        change = TextChange(
            text=validation.edited_text(given.text, field="staged_text.text") if "text" in paths else None,
            tags=validation.tags(given.tags, field="staged_text.tags") if "tags" in paths else None,
        )
        updated = self._repository.update_text(
            ref.project, ref.id, change, etags.expected_version(given.etag, field="staged_text.etag")
        )
        return task_pb2.UpdateStagedTextResponse(staged_text=staged_text_proto(updated))

    def DiscardStagedTexts(self, request, context):
        project, targets = _batch_targets(request.parent, request.names)
        texts = self._repository.set_texts_state(project, targets, TextState.DISCARDED)
        return task_pb2.DiscardStagedTextsResponse(staged_texts=[staged_text_proto(text) for text in texts])

    def RestoreStagedTexts(self, request, context):
        project, targets = _batch_targets(request.parent, request.names)
        texts = self._repository.set_texts_state(project, targets, TextState.STAGED)
        return task_pb2.RestoreStagedTextsResponse(staged_texts=[staged_text_proto(text) for text in texts])

    def ImportStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        has_filter = request.HasField("filter")
        if request.names and has_filter:
            raise InvalidArgument.field("filter", "give either names or a filter, not both")
        if request.names:
            _, targets = _batch_targets(request.parent, request.names)
            result = self._repository.import_texts(project, targets=targets)
        elif has_filter:
            text_filter = _text_filter(request.filter, project, field="filter")
            if text_filter.state not in (None, TextState.STAGED):
                raise InvalidArgument.field("filter.state", "import takes staged texts: leave it unset or STAGED")
            result = self._repository.import_texts(project, text_filter=text_filter)
        else:
            raise InvalidArgument.field(
                "names", "give the texts' names, or a filter (an empty filter imports every staged text of the project)"
            )
        return task_pb2.ImportStagedTextsResponse(
            created_count=result.created_count, already_imported_count=result.already_imported_count
        )

    def ListTasks(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        tag = validation.tag(request.tag, field="tag") if request.tag else None
        job_id = (
            names.parse_job(request.generation_job, field="generation_job", project=project).id
            if request.generation_job
            else None
        )
        limit = page_tokens.page_size(request.page_size)
        query = _query_key(request.parent, tag or "", job_id or "")
        page = self._repository.list_tasks(
            project, tag=tag, job_id=job_id, before_seq=_page_position(request.page_token, query), limit=limit
        )
        return task_pb2.ListTasksResponse(
            tasks=[task_proto(task) for task in page.items], next_page_token=_next_token(page, query)
        )

    def GetTask(self, request, context):
        ref = names.parse_task(request.name, field="name")
        return task_pb2.GetTaskResponse(task=task_proto(self._repository.get_task(*ref_key(ref))))

    def UpdateTask(self, request, context):
        given = request.task
        ref = names.parse_task(given.name, field="task.name")
        paths = validation.update_mask(
            request.update_mask.paths, allowed=("tags",), populated=_populated(given, ("tags",))
        )
        if not paths:
            return task_pb2.UpdateTaskResponse(task=task_proto(self._repository.get_task(*ref_key(ref))))
        tags = validation.tags(given.tags, field="task.tags")
        updated = self._repository.update_task_tags(
            ref.project, ref.id, tags, etags.expected_version(given.etag, field="task.etag")
        )
        return task_pb2.UpdateTaskResponse(task=task_proto(updated))

    def ExportStagedTexts(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        text_filter = _text_filter(request.filter, project, field="filter")
        export_format = _export_format(request.format)
        texts = self._repository.iter_texts(project, text_filter)
        try:
            for chunk in export_chunks(texts, export_format, project=project, now=datetime.now(UTC)):
                yield task_pb2.ExportStagedTextsResponse(
                    data=chunk.data, content_type=chunk.content_type, file_name=chunk.file_name
                )
        finally:
            texts.close()  # drops the page in hand at once when the client goes away


class JobStoreServicer(job_store_grpc.JobStoreServiceServicer):
    """synthtasks.internal.v1.JobStoreService: the bookkeeping of jobs and their slots."""

    def __init__(self, repository: Repository, quota_policy: QuotaPolicy) -> None:
        self._repository = repository
        self._quota_policy = quota_policy

    def CreateJob(self, request, context):
        project = names.parse_project(request.parent, field="parent")
        new = _new_job(project, request.generation_job, request.request_id)
        job, created, may_enqueue = self._repository.create_job(new, self._quota_policy.limits_for(project))
        if created:
            JOBS.labels("created").inc()
        # `enqueued` tells the caller not to enqueue: true for every caller but the one
        # that holds the claim, so racing calls with one request_id enqueue once.
        return job_store_pb2.CreateJobResponse(generation_job=job_proto(job), created=created, enqueued=not may_enqueue)

    def MarkJobEnqueued(self, request, context):
        ref = names.parse_job(request.name, field="name")
        return job_store_pb2.MarkJobEnqueuedResponse(already_enqueued=self._repository.mark_job_enqueued(*ref_key(ref)))

    def GetJobWork(self, request, context):
        ref = names.parse_job(request.name, field="name")
        validation.non_negative(request.first_slot, field="first_slot")
        if request.slot_count < 1:
            raise InvalidArgument.field("slot_count", "must be at least 1")
        work = self._repository.get_job_work(ref.project, ref.id, request.first_slot, request.slot_count)
        return job_store_pb2.GetJobWorkResponse(generation_job=job_proto(work.job), filled_slots=work.filled_slots)

    def AppendResults(self, request, context):
        ref = names.parse_job(request.name, field="name")
        validation.batch_size(len(request.results), field="results", limit=validation.MAX_RESULTS_PER_APPEND)
        results = _slot_results(request.results)
        appended = self._repository.append_results(
            ref.project,
            ref.id,
            results,
            extra_prompt_tokens=validation.non_negative(request.extra_prompt_tokens, field="extra_prompt_tokens"),
            extra_completion_tokens=validation.non_negative(
                request.extra_completion_tokens, field="extra_completion_tokens"
            ),
        )
        if appended.ended_job:
            JOBS.labels(appended.state.value.lower()).inc()
        return job_store_pb2.AppendResultsResponse(
            outcomes=[
                job_store_pb2.SlotOutcome(slot=o.slot, written=o.written, duplicate=o.duplicate)
                for o in appended.outcomes
            ],
            state=_job_state_proto(appended.state),
        )

    def FailJob(self, request, context):
        ref = names.parse_job(request.name, field="name")
        if not request.HasField("error"):
            raise InvalidArgument.field("error", "is required: say why the job failed")
        error = _job_error(request.error, field="error")
        job, failed = self._repository.fail_job(ref.project, ref.id, error)
        if failed:
            JOBS.labels("failed").inc()
        return job_store_pb2.FailJobResponse(generation_job=job_proto(job))

    def ClaimStalledJobs(self, request, context):
        stalled_for = request.stalled_for.ToTimedelta()
        if stalled_for.total_seconds() <= 0:
            raise InvalidArgument.field("stalled_for", "must be positive")
        if not 1 <= request.max_jobs <= _MAX_CLAIMED_JOBS:
            raise InvalidArgument.field("max_jobs", f"must be between 1 and {_MAX_CLAIMED_JOBS}")
        jobs = self._repository.claim_stalled_jobs(stalled_for, request.max_jobs)
        return job_store_pb2.ClaimStalledJobsResponse(generation_jobs=[job_proto(job) for job in jobs])


# -- requests to domain values -------------------------------------------------------------


def ref_key(ref: names.ResourceName) -> tuple[str, str]:
    return ref.project, ref.id


def _new_job(project: str, job: generation_pb2.GenerationJob, request_id: str) -> NewJob:
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


def _populated(message, fields: tuple[str, ...]) -> list[str]:
    """The fields of `message` that hold a non-empty value (AIP-134's implied mask)."""
    return [name for name in fields if getattr(message, name)]


def _slot_results(results) -> list[SlotResult]:
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
            converted.append(SlotResult(result.slot, failure=_job_error(result.failure, field=f"{field}.failure")))
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


def span_records(given) -> list[Span]:
    """Spans of a request as records; `needs_review` is output only and ignored."""
    return [Span(span.start, span.end, span.label, span.text) for span in given]


def _job_error(error: generation_pb2.JobError, *, field: str) -> JobError:
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


def _text_filter(given: task_pb2.StagedTextFilter, project: str, *, field: str) -> TextFilter:
    return TextFilter(
        job_id=(
            names.parse_job(given.generation_job, field=f"{field}.generation_job", project=project).id
            if given.generation_job
            else None
        ),
        state=_state_filter(given.state, task_pb2.StagedTextState, TextState, field=f"{field}.state"),
        tag=validation.tag(given.tag, field=f"{field}.tag") if given.tag else None,
        duplicate=given.duplicate if given.HasField("duplicate") else None,
        query=validation.query(given.query, field=f"{field}.query") or None,
    )


def _batch_targets(parent: str, given_names) -> tuple[str, list[tuple[str, str]]]:
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


def _state_filter(value: int, proto_enum, domain_enum, *, field: str):
    """The domain state for a proto state enum value; None for the UNSPECIFIED zero."""
    try:
        name = proto_enum.Name(value)
    except ValueError:
        raise InvalidArgument.field(field, f"{value} is not a {proto_enum.DESCRIPTOR.name}") from None
    if value == 0:
        return None
    prefix = proto_enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return domain_enum(name.removeprefix(prefix))


def _export_format(value: int) -> ExportFormat:
    try:
        name = task_pb2.ExportFormat.Name(value)
    except ValueError:
        raise InvalidArgument.field(
            "format",
            f"{value} is not an ExportFormat; use EXPORT_FORMAT_CSV, EXPORT_FORMAT_JSON or EXPORT_FORMAT_JSONL",
        ) from None
    if value == task_pb2.EXPORT_FORMAT_UNSPECIFIED:
        return ExportFormat.CSV
    return ExportFormat[name.removeprefix("EXPORT_FORMAT_")]


# -- page tokens: the keyset position, bound to the query it belongs to ---------------------


def _query_key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:12]


def _page_position(token: str, query: str) -> int | None:
    position = page_tokens.decode(token, fields={"seq": int, "query": str})
    if position is None:
        return None
    seq = position["seq"]
    if seq < 0:
        raise InvalidArgument.field("page_token", "is not a page token returned by this API")
    if position["query"] != query:
        raise InvalidArgument.field("page_token", "belongs to a different query (parent or filter changed)")
    return seq


def _next_token(page: Page, query: str) -> str:
    if page.next_seq is None:
        return ""
    return page_tokens.encode({"seq": page.next_seq, "query": query})


# -- records to protos -----------------------------------------------------------------------


def _job_state_proto(state: JobState) -> str:
    """The enum's label: message constructors take labels and refuse unknown ones."""
    return f"GENERATION_JOB_STATE_{state.value}"


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


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
        state=_job_state_proto(job.state),
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
