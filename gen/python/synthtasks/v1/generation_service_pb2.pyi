import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from synthtasks.v1 import task_service_pb2 as _task_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerationJobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATION_JOB_STATE_UNSPECIFIED: _ClassVar[GenerationJobState]
    GENERATION_JOB_STATE_QUEUED: _ClassVar[GenerationJobState]
    GENERATION_JOB_STATE_RUNNING: _ClassVar[GenerationJobState]
    GENERATION_JOB_STATE_SUCCEEDED: _ClassVar[GenerationJobState]
    GENERATION_JOB_STATE_FAILED: _ClassVar[GenerationJobState]
    GENERATION_JOB_STATE_CANCELLED: _ClassVar[GenerationJobState]

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    FAILURE_REASON_INVALID_KEY: _ClassVar[FailureReason]
    FAILURE_REASON_DEPLOYMENT_NOT_FOUND: _ClassVar[FailureReason]
    FAILURE_REASON_MODEL_NOT_FOUND: _ClassVar[FailureReason]
    FAILURE_REASON_CONTENT_FILTERED: _ClassVar[FailureReason]
    FAILURE_REASON_RATE_LIMITED: _ClassVar[FailureReason]
    FAILURE_REASON_TIMEOUT: _ClassVar[FailureReason]
    FAILURE_REASON_PROVIDER_ERROR: _ClassVar[FailureReason]
    FAILURE_REASON_BAD_RESPONSE: _ClassVar[FailureReason]
    FAILURE_REASON_DUPLICATE: _ClassVar[FailureReason]
    FAILURE_REASON_PROVIDER_UNAVAILABLE: _ClassVar[FailureReason]
    FAILURE_REASON_QUOTA_EXCEEDED: _ClassVar[FailureReason]
    FAILURE_REASON_BAD_STRUCTURED_OUTPUT: _ClassVar[FailureReason]
GENERATION_JOB_STATE_UNSPECIFIED: GenerationJobState
GENERATION_JOB_STATE_QUEUED: GenerationJobState
GENERATION_JOB_STATE_RUNNING: GenerationJobState
GENERATION_JOB_STATE_SUCCEEDED: GenerationJobState
GENERATION_JOB_STATE_FAILED: GenerationJobState
GENERATION_JOB_STATE_CANCELLED: GenerationJobState
FAILURE_REASON_UNSPECIFIED: FailureReason
FAILURE_REASON_INVALID_KEY: FailureReason
FAILURE_REASON_DEPLOYMENT_NOT_FOUND: FailureReason
FAILURE_REASON_MODEL_NOT_FOUND: FailureReason
FAILURE_REASON_CONTENT_FILTERED: FailureReason
FAILURE_REASON_RATE_LIMITED: FailureReason
FAILURE_REASON_TIMEOUT: FailureReason
FAILURE_REASON_PROVIDER_ERROR: FailureReason
FAILURE_REASON_BAD_RESPONSE: FailureReason
FAILURE_REASON_DUPLICATE: FailureReason
FAILURE_REASON_PROVIDER_UNAVAILABLE: FailureReason
FAILURE_REASON_QUOTA_EXCEEDED: FailureReason
FAILURE_REASON_BAD_STRUCTURED_OUTPUT: FailureReason

class PromptVariable(_message.Message):
    __slots__ = ("name", "values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class EntityLabel(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("requested", "produced", "failed", "duplicates", "dropped_spans")
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SPANS_FIELD_NUMBER: _ClassVar[int]
    requested: int
    produced: int
    failed: int
    duplicates: int
    dropped_spans: int
    def __init__(self, requested: _Optional[int] = ..., produced: _Optional[int] = ..., failed: _Optional[int] = ..., duplicates: _Optional[int] = ..., dropped_spans: _Optional[int] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: FailureReason
    message: str
    def __init__(self, reason: _Optional[_Union[FailureReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class GenerationJob(_message.Message):
    __slots__ = ("name", "prompt", "system_prompt", "temperature", "text_count", "provider", "model", "max_output_tokens", "seed", "tags", "variables", "unique", "state", "counts", "usage", "error", "create_time", "start_time", "end_time", "update_time", "request_id", "prompt_hash", "etag", "stalled", "labels", "variable_labels")
    class VariableLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TEXT_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_HASH_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    STALLED_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    prompt: str
    system_prompt: str
    temperature: float
    text_count: int
    provider: str
    model: str
    max_output_tokens: int
    seed: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    variables: _containers.RepeatedCompositeFieldContainer[PromptVariable]
    unique: bool
    state: GenerationJobState
    counts: JobCounts
    usage: TokenUsage
    error: JobError
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    request_id: str
    prompt_hash: str
    etag: str
    stalled: bool
    labels: _containers.RepeatedCompositeFieldContainer[EntityLabel]
    variable_labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., prompt: _Optional[str] = ..., system_prompt: _Optional[str] = ..., temperature: _Optional[float] = ..., text_count: _Optional[int] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., max_output_tokens: _Optional[int] = ..., seed: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., variables: _Optional[_Iterable[_Union[PromptVariable, _Mapping]]] = ..., unique: _Optional[bool] = ..., state: _Optional[_Union[GenerationJobState, str]] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., prompt_hash: _Optional[str] = ..., etag: _Optional[str] = ..., stalled: _Optional[bool] = ..., labels: _Optional[_Iterable[_Union[EntityLabel, _Mapping]]] = ..., variable_labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateGenerationJobRequest(_message.Message):
    __slots__ = ("parent", "generation_job", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    generation_job: GenerationJob
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., generation_job: _Optional[_Union[GenerationJob, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateGenerationJobResponse(_message.Message):
    __slots__ = ("generation_job",)
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    generation_job: GenerationJob
    def __init__(self, generation_job: _Optional[_Union[GenerationJob, _Mapping]] = ...) -> None: ...

class GetGenerationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetGenerationJobResponse(_message.Message):
    __slots__ = ("generation_job",)
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    generation_job: GenerationJob
    def __init__(self, generation_job: _Optional[_Union[GenerationJob, _Mapping]] = ...) -> None: ...

class ListGenerationJobsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "state")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    state: GenerationJobState
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[GenerationJobState, str]] = ...) -> None: ...

class ListGenerationJobsResponse(_message.Message):
    __slots__ = ("generation_jobs", "next_page_token")
    GENERATION_JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    generation_jobs: _containers.RepeatedCompositeFieldContainer[GenerationJob]
    next_page_token: str
    def __init__(self, generation_jobs: _Optional[_Iterable[_Union[GenerationJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchGenerationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchGenerationJobResponse(_message.Message):
    __slots__ = ("generation_job", "staged_text", "since_previous", "entity_balance")
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    STAGED_TEXT_FIELD_NUMBER: _ClassVar[int]
    SINCE_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_BALANCE_FIELD_NUMBER: _ClassVar[int]
    generation_job: GenerationJob
    staged_text: _task_service_pb2.StagedText
    since_previous: _duration_pb2.Duration
    entity_balance: EntityBalance
    def __init__(self, generation_job: _Optional[_Union[GenerationJob, _Mapping]] = ..., staged_text: _Optional[_Union[_task_service_pb2.StagedText, _Mapping]] = ..., since_previous: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., entity_balance: _Optional[_Union[EntityBalance, _Mapping]] = ...) -> None: ...

class CancelGenerationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelGenerationJobResponse(_message.Message):
    __slots__ = ("generation_job",)
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    generation_job: GenerationJob
    def __init__(self, generation_job: _Optional[_Union[GenerationJob, _Mapping]] = ...) -> None: ...

class QuotaUsage(_message.Message):
    __slots__ = ("quota", "limit", "usage")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    quota: str
    limit: int
    usage: int
    def __init__(self, quota: _Optional[str] = ..., limit: _Optional[int] = ..., usage: _Optional[int] = ...) -> None: ...

class ProjectQuota(_message.Message):
    __slots__ = ("name", "quotas")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaUsage]
    def __init__(self, name: _Optional[str] = ..., quotas: _Optional[_Iterable[_Union[QuotaUsage, _Mapping]]] = ...) -> None: ...

class GetProjectQuotaRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetProjectQuotaResponse(_message.Message):
    __slots__ = ("project_quota",)
    PROJECT_QUOTA_FIELD_NUMBER: _ClassVar[int]
    project_quota: ProjectQuota
    def __init__(self, project_quota: _Optional[_Union[ProjectQuota, _Mapping]] = ...) -> None: ...

class GetEntityBalanceRequest(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: str
    def __init__(self, scope: _Optional[str] = ...) -> None: ...

class GetEntityBalanceResponse(_message.Message):
    __slots__ = ("entity_balance",)
    ENTITY_BALANCE_FIELD_NUMBER: _ClassVar[int]
    entity_balance: EntityBalance
    def __init__(self, entity_balance: _Optional[_Union[EntityBalance, _Mapping]] = ...) -> None: ...

class EntityBalance(_message.Message):
    __slots__ = ("scope", "texts", "spans", "dropped_spans", "labels", "variable_values")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SPANS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    scope: str
    texts: int
    spans: int
    dropped_spans: int
    labels: _containers.RepeatedCompositeFieldContainer[LabelBalance]
    variable_values: _containers.RepeatedCompositeFieldContainer[VariableValueBalance]
    def __init__(self, scope: _Optional[str] = ..., texts: _Optional[int] = ..., spans: _Optional[int] = ..., dropped_spans: _Optional[int] = ..., labels: _Optional[_Iterable[_Union[LabelBalance, _Mapping]]] = ..., variable_values: _Optional[_Iterable[_Union[VariableValueBalance, _Mapping]]] = ...) -> None: ...

class LabelBalance(_message.Message):
    __slots__ = ("label", "texts", "spans")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    label: str
    texts: int
    spans: int
    def __init__(self, label: _Optional[str] = ..., texts: _Optional[int] = ..., spans: _Optional[int] = ...) -> None: ...

class VariableValueBalance(_message.Message):
    __slots__ = ("variable", "value", "labels", "texts", "spans")
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    variable: str
    value: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    texts: int
    spans: int
    def __init__(self, variable: _Optional[str] = ..., value: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., texts: _Optional[int] = ..., spans: _Optional[int] = ...) -> None: ...
