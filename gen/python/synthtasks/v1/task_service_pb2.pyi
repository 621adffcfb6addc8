import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StagedTextState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGED_TEXT_STATE_UNSPECIFIED: _ClassVar[StagedTextState]
    STAGED_TEXT_STATE_STAGED: _ClassVar[StagedTextState]
    STAGED_TEXT_STATE_IMPORTED: _ClassVar[StagedTextState]
    STAGED_TEXT_STATE_DISCARDED: _ClassVar[StagedTextState]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSON: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSONL: _ClassVar[ExportFormat]
    EXPORT_FORMAT_LABEL_STUDIO: _ClassVar[ExportFormat]
STAGED_TEXT_STATE_UNSPECIFIED: StagedTextState
STAGED_TEXT_STATE_STAGED: StagedTextState
STAGED_TEXT_STATE_IMPORTED: StagedTextState
STAGED_TEXT_STATE_DISCARDED: StagedTextState
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_JSON: ExportFormat
EXPORT_FORMAT_JSONL: ExportFormat
EXPORT_FORMAT_LABEL_STUDIO: ExportFormat

class ExportOptions(_message.Message):
    __slots__ = ("label_studio_from_name", "label_studio_to_name", "csv_formula_guard")
    LABEL_STUDIO_FROM_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_STUDIO_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    CSV_FORMULA_GUARD_FIELD_NUMBER: _ClassVar[int]
    label_studio_from_name: str
    label_studio_to_name: str
    csv_formula_guard: bool
    def __init__(self, label_studio_from_name: _Optional[str] = ..., label_studio_to_name: _Optional[str] = ..., csv_formula_guard: _Optional[bool] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("generation_job", "provider", "model", "temperature", "seed", "variables", "prompt_hash", "prompt_tokens", "completion_tokens", "finish_reason", "latency", "generate_time", "slot")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_HASH_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    GENERATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    generation_job: str
    provider: str
    model: str
    temperature: float
    seed: int
    variables: _containers.ScalarMap[str, str]
    prompt_hash: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency: _duration_pb2.Duration
    generate_time: _timestamp_pb2.Timestamp
    slot: int
    def __init__(self, generation_job: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., variables: _Optional[_Mapping[str, str]] = ..., prompt_hash: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., finish_reason: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., generate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., slot: _Optional[int] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("start", "end", "label", "text", "needs_review")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    label: str
    text: str
    needs_review: bool
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., label: _Optional[str] = ..., text: _Optional[str] = ..., needs_review: _Optional[bool] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("model_version", "job", "spans")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    job: str
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    def __init__(self, model_version: _Optional[str] = ..., job: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ...) -> None: ...

class StagedText(_message.Message):
    __slots__ = ("name", "text", "original_text", "tags", "state", "duplicate", "lineage", "task", "etag", "create_time", "update_time", "spans")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    original_text: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    state: StagedTextState
    duplicate: bool
    lineage: Lineage
    task: str
    etag: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., original_text: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[StagedTextState, str]] = ..., duplicate: _Optional[bool] = ..., lineage: _Optional[_Union[Lineage, _Mapping]] = ..., task: _Optional[str] = ..., etag: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ...) -> None: ...

class StagedTextFilter(_message.Message):
    __slots__ = ("generation_job", "state", "tag", "duplicate", "query")
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    generation_job: str
    state: StagedTextState
    tag: str
    duplicate: bool
    query: str
    def __init__(self, generation_job: _Optional[str] = ..., state: _Optional[_Union[StagedTextState, str]] = ..., tag: _Optional[str] = ..., duplicate: _Optional[bool] = ..., query: _Optional[str] = ...) -> None: ...

class ListStagedTextsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: StagedTextFilter
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[StagedTextFilter, _Mapping]] = ...) -> None: ...

class ListStagedTextsResponse(_message.Message):
    __slots__ = ("staged_texts", "next_page_token")
    STAGED_TEXTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    staged_texts: _containers.RepeatedCompositeFieldContainer[StagedText]
    next_page_token: str
    def __init__(self, staged_texts: _Optional[_Iterable[_Union[StagedText, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStagedTextRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetStagedTextResponse(_message.Message):
    __slots__ = ("staged_text",)
    STAGED_TEXT_FIELD_NUMBER: _ClassVar[int]
    staged_text: StagedText
    def __init__(self, staged_text: _Optional[_Union[StagedText, _Mapping]] = ...) -> None: ...

class UpdateStagedTextRequest(_message.Message):
    __slots__ = ("staged_text", "update_mask")
    STAGED_TEXT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    staged_text: StagedText
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, staged_text: _Optional[_Union[StagedText, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateStagedTextResponse(_message.Message):
    __slots__ = ("staged_text",)
    STAGED_TEXT_FIELD_NUMBER: _ClassVar[int]
    staged_text: StagedText
    def __init__(self, staged_text: _Optional[_Union[StagedText, _Mapping]] = ...) -> None: ...

class DiscardStagedTextsRequest(_message.Message):
    __slots__ = ("parent", "names")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class DiscardStagedTextsResponse(_message.Message):
    __slots__ = ("staged_texts",)
    STAGED_TEXTS_FIELD_NUMBER: _ClassVar[int]
    staged_texts: _containers.RepeatedCompositeFieldContainer[StagedText]
    def __init__(self, staged_texts: _Optional[_Iterable[_Union[StagedText, _Mapping]]] = ...) -> None: ...

class RestoreStagedTextsRequest(_message.Message):
    __slots__ = ("parent", "names")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class RestoreStagedTextsResponse(_message.Message):
    __slots__ = ("staged_texts",)
    STAGED_TEXTS_FIELD_NUMBER: _ClassVar[int]
    staged_texts: _containers.RepeatedCompositeFieldContainer[StagedText]
    def __init__(self, staged_texts: _Optional[_Iterable[_Union[StagedText, _Mapping]]] = ...) -> None: ...

class ImportStagedTextsRequest(_message.Message):
    __slots__ = ("parent", "names", "filter")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    parent: str
    names: _containers.RepeatedScalarFieldContainer[str]
    filter: StagedTextFilter
    def __init__(self, parent: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[StagedTextFilter, _Mapping]] = ...) -> None: ...

class ImportStagedTextsResponse(_message.Message):
    __slots__ = ("created_count", "already_imported_count")
    CREATED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_IMPORTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    created_count: int
    already_imported_count: int
    def __init__(self, created_count: _Optional[int] = ..., already_imported_count: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "text", "tags", "source_staged_text", "generation_job", "create_time", "etag", "predictions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STAGED_TEXT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    source_staged_text: str
    generation_job: str
    create_time: _timestamp_pb2.Timestamp
    etag: str
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., source_staged_text: _Optional[str] = ..., generation_job: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "tag", "generation_job")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    tag: str
    generation_job: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tag: _Optional[str] = ..., generation_job: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("task", "update_mask")
    TASK_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ExportStagedTextsRequest(_message.Message):
    __slots__ = ("parent", "filter", "format", "options")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    filter: StagedTextFilter
    format: ExportFormat
    options: ExportOptions
    def __init__(self, parent: _Optional[str] = ..., filter: _Optional[_Union[StagedTextFilter, _Mapping]] = ..., format: _Optional[_Union[ExportFormat, str]] = ..., options: _Optional[_Union[ExportOptions, _Mapping]] = ...) -> None: ...

class ExportStagedTextsResponse(_message.Message):
    __slots__ = ("data", "content_type", "file_name")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    file_name: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class ExportTasksRequest(_message.Message):
    __slots__ = ("parent", "tag", "generation_job", "format", "options")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    GENERATION_JOB_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    parent: str
    tag: str
    generation_job: str
    format: ExportFormat
    options: ExportOptions
    def __init__(self, parent: _Optional[str] = ..., tag: _Optional[str] = ..., generation_job: _Optional[str] = ..., format: _Optional[_Union[ExportFormat, str]] = ..., options: _Optional[_Union[ExportOptions, _Mapping]] = ...) -> None: ...

class ExportTasksResponse(_message.Message):
    __slots__ = ("data", "content_type", "file_name")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    file_name: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...
