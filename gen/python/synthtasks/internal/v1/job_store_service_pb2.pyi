import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from synthtasks.v1 import generation_service_pb2 as _generation_service_pb2
from synthtasks.v1 import task_service_pb2 as _task_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateJobRequest(_message.Message):
    __slots__ = ("parent", "generation_job", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    generation_job: _generation_service_pb2.GenerationJob
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., generation_job: _Optional[_Union[_generation_service_pb2.GenerationJob, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("generation_job", "created", "enqueued")
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    generation_job: _generation_service_pb2.GenerationJob
    created: bool
    enqueued: bool
    def __init__(self, generation_job: _Optional[_Union[_generation_service_pb2.GenerationJob, _Mapping]] = ..., created: _Optional[bool] = ..., enqueued: _Optional[bool] = ...) -> None: ...

class MarkJobEnqueuedRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class MarkJobEnqueuedResponse(_message.Message):
    __slots__ = ("already_enqueued",)
    ALREADY_ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    already_enqueued: bool
    def __init__(self, already_enqueued: _Optional[bool] = ...) -> None: ...

class GetJobWorkRequest(_message.Message):
    __slots__ = ("name", "first_slot", "slot_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_SLOT_FIELD_NUMBER: _ClassVar[int]
    SLOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    first_slot: int
    slot_count: int
    def __init__(self, name: _Optional[str] = ..., first_slot: _Optional[int] = ..., slot_count: _Optional[int] = ...) -> None: ...

class GetJobWorkResponse(_message.Message):
    __slots__ = ("generation_job", "filled_slots")
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    FILLED_SLOTS_FIELD_NUMBER: _ClassVar[int]
    generation_job: _generation_service_pb2.GenerationJob
    filled_slots: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, generation_job: _Optional[_Union[_generation_service_pb2.GenerationJob, _Mapping]] = ..., filled_slots: _Optional[_Iterable[int]] = ...) -> None: ...

class GeneratedText(_message.Message):
    __slots__ = ("text", "model", "prompt_tokens", "completion_tokens", "finish_reason", "latency", "generate_time", "variables", "spans", "dropped_spans")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    GENERATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SPANS_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency: _duration_pb2.Duration
    generate_time: _timestamp_pb2.Timestamp
    variables: _containers.ScalarMap[str, str]
    spans: _containers.RepeatedCompositeFieldContainer[_task_service_pb2.Span]
    dropped_spans: int
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., finish_reason: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., generate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., variables: _Optional[_Mapping[str, str]] = ..., spans: _Optional[_Iterable[_Union[_task_service_pb2.Span, _Mapping]]] = ..., dropped_spans: _Optional[int] = ...) -> None: ...

class SlotResult(_message.Message):
    __slots__ = ("slot", "text", "failure", "reject_duplicate")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    REJECT_DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    slot: int
    text: GeneratedText
    failure: _generation_service_pb2.JobError
    reject_duplicate: bool
    def __init__(self, slot: _Optional[int] = ..., text: _Optional[_Union[GeneratedText, _Mapping]] = ..., failure: _Optional[_Union[_generation_service_pb2.JobError, _Mapping]] = ..., reject_duplicate: _Optional[bool] = ...) -> None: ...

class SlotOutcome(_message.Message):
    __slots__ = ("slot", "written", "duplicate")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    slot: int
    written: bool
    duplicate: bool
    def __init__(self, slot: _Optional[int] = ..., written: _Optional[bool] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class AppendResultsRequest(_message.Message):
    __slots__ = ("name", "results", "extra_prompt_tokens", "extra_completion_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    results: _containers.RepeatedCompositeFieldContainer[SlotResult]
    extra_prompt_tokens: int
    extra_completion_tokens: int
    def __init__(self, name: _Optional[str] = ..., results: _Optional[_Iterable[_Union[SlotResult, _Mapping]]] = ..., extra_prompt_tokens: _Optional[int] = ..., extra_completion_tokens: _Optional[int] = ...) -> None: ...

class AppendResultsResponse(_message.Message):
    __slots__ = ("outcomes", "state")
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[SlotOutcome]
    state: _generation_service_pb2.GenerationJobState
    def __init__(self, outcomes: _Optional[_Iterable[_Union[SlotOutcome, _Mapping]]] = ..., state: _Optional[_Union[_generation_service_pb2.GenerationJobState, str]] = ...) -> None: ...

class FailJobRequest(_message.Message):
    __slots__ = ("name", "error")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    error: _generation_service_pb2.JobError
    def __init__(self, name: _Optional[str] = ..., error: _Optional[_Union[_generation_service_pb2.JobError, _Mapping]] = ...) -> None: ...

class FailJobResponse(_message.Message):
    __slots__ = ("generation_job",)
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    generation_job: _generation_service_pb2.GenerationJob
    def __init__(self, generation_job: _Optional[_Union[_generation_service_pb2.GenerationJob, _Mapping]] = ...) -> None: ...

class ClaimStalledJobsRequest(_message.Message):
    __slots__ = ("stalled_for", "max_jobs")
    STALLED_FOR_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    stalled_for: _duration_pb2.Duration
    max_jobs: int
    def __init__(self, stalled_for: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_jobs: _Optional[int] = ...) -> None: ...

class ClaimStalledJobsResponse(_message.Message):
    __slots__ = ("generation_jobs",)
    GENERATION_JOBS_FIELD_NUMBER: _ClassVar[int]
    generation_jobs: _containers.RepeatedCompositeFieldContainer[_generation_service_pb2.GenerationJob]
    def __init__(self, generation_jobs: _Optional[_Iterable[_Union[_generation_service_pb2.GenerationJob, _Mapping]]] = ...) -> None: ...
