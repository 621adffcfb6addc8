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

class ProviderKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVIDER_KIND_UNSPECIFIED: _ClassVar[ProviderKind]
    PROVIDER_KIND_OPENAI: _ClassVar[ProviderKind]
    PROVIDER_KIND_AZURE_OPENAI: _ClassVar[ProviderKind]
    PROVIDER_KIND_OPENAI_COMPATIBLE: _ClassVar[ProviderKind]

class StructuredOutputMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRUCTURED_OUTPUT_MODE_UNSPECIFIED: _ClassVar[StructuredOutputMode]
    STRUCTURED_OUTPUT_MODE_JSON_SCHEMA: _ClassVar[StructuredOutputMode]
    STRUCTURED_OUTPUT_MODE_JSON_OBJECT: _ClassVar[StructuredOutputMode]

class ValidationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VALIDATION_STATE_UNSPECIFIED: _ClassVar[ValidationState]
    VALIDATION_STATE_VALID: _ClassVar[ValidationState]
    VALIDATION_STATE_INVALID_KEY: _ClassVar[ValidationState]
    VALIDATION_STATE_ENDPOINT_UNREACHABLE: _ClassVar[ValidationState]
    VALIDATION_STATE_DEPLOYMENT_NOT_FOUND: _ClassVar[ValidationState]
    VALIDATION_STATE_MODEL_NOT_FOUND: _ClassVar[ValidationState]
    VALIDATION_STATE_RATE_LIMITED: _ClassVar[ValidationState]
    VALIDATION_STATE_TIMEOUT: _ClassVar[ValidationState]
    VALIDATION_STATE_ERROR: _ClassVar[ValidationState]
PROVIDER_KIND_UNSPECIFIED: ProviderKind
PROVIDER_KIND_OPENAI: ProviderKind
PROVIDER_KIND_AZURE_OPENAI: ProviderKind
PROVIDER_KIND_OPENAI_COMPATIBLE: ProviderKind
STRUCTURED_OUTPUT_MODE_UNSPECIFIED: StructuredOutputMode
STRUCTURED_OUTPUT_MODE_JSON_SCHEMA: StructuredOutputMode
STRUCTURED_OUTPUT_MODE_JSON_OBJECT: StructuredOutputMode
VALIDATION_STATE_UNSPECIFIED: ValidationState
VALIDATION_STATE_VALID: ValidationState
VALIDATION_STATE_INVALID_KEY: ValidationState
VALIDATION_STATE_ENDPOINT_UNREACHABLE: ValidationState
VALIDATION_STATE_DEPLOYMENT_NOT_FOUND: ValidationState
VALIDATION_STATE_MODEL_NOT_FOUND: ValidationState
VALIDATION_STATE_RATE_LIMITED: ValidationState
VALIDATION_STATE_TIMEOUT: ValidationState
VALIDATION_STATE_ERROR: ValidationState

class ProviderLimits(_message.Message):
    __slots__ = ("requests_per_minute", "tokens_per_minute", "max_concurrent_requests")
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests_per_minute: int
    tokens_per_minute: int
    max_concurrent_requests: int
    def __init__(self, requests_per_minute: _Optional[int] = ..., tokens_per_minute: _Optional[int] = ..., max_concurrent_requests: _Optional[int] = ...) -> None: ...

class ValidationResult(_message.Message):
    __slots__ = ("state", "message", "latency", "validate_time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    state: ValidationState
    message: str
    latency: _duration_pb2.Duration
    validate_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[ValidationState, str]] = ..., message: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., validate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("name", "display_name", "kind", "endpoint", "deployment", "api_version", "model", "organization", "api_key", "key_hint", "limits", "max_choices_per_request", "request_timeout", "last_validation", "create_time", "update_time", "etag", "allowed_models", "structured_output")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MAX_CHOICES_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    LAST_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    kind: ProviderKind
    endpoint: str
    deployment: str
    api_version: str
    model: str
    organization: str
    api_key: str
    key_hint: str
    limits: ProviderLimits
    max_choices_per_request: int
    request_timeout: _duration_pb2.Duration
    last_validation: ValidationResult
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    structured_output: StructuredOutputMode
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., kind: _Optional[_Union[ProviderKind, str]] = ..., endpoint: _Optional[str] = ..., deployment: _Optional[str] = ..., api_version: _Optional[str] = ..., model: _Optional[str] = ..., organization: _Optional[str] = ..., api_key: _Optional[str] = ..., key_hint: _Optional[str] = ..., limits: _Optional[_Union[ProviderLimits, _Mapping]] = ..., max_choices_per_request: _Optional[int] = ..., request_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., last_validation: _Optional[_Union[ValidationResult, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., allowed_models: _Optional[_Iterable[str]] = ..., structured_output: _Optional[_Union[StructuredOutputMode, str]] = ...) -> None: ...

class CreateProviderRequest(_message.Message):
    __slots__ = ("provider", "provider_id", "validate_first")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_FIRST_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    provider_id: str
    validate_first: bool
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ..., provider_id: _Optional[str] = ..., validate_first: _Optional[bool] = ...) -> None: ...

class CreateProviderResponse(_message.Message):
    __slots__ = ("provider", "validation")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    validation: ValidationResult
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ..., validation: _Optional[_Union[ValidationResult, _Mapping]] = ...) -> None: ...

class GetProviderRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetProviderResponse(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers", "next_page_token")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[Provider]
    next_page_token: str
    def __init__(self, providers: _Optional[_Iterable[_Union[Provider, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProviderRequest(_message.Message):
    __slots__ = ("provider", "update_mask")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateProviderResponse(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ...) -> None: ...

class DeleteProviderRequest(_message.Message):
    __slots__ = ("name", "force", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    force: bool
    etag: str
    def __init__(self, name: _Optional[str] = ..., force: _Optional[bool] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteProviderResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidateProviderRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ValidateProviderResponse(_message.Message):
    __slots__ = ("result", "provider")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    result: ValidationResult
    provider: Provider
    def __init__(self, result: _Optional[_Union[ValidationResult, _Mapping]] = ..., provider: _Optional[_Union[Provider, _Mapping]] = ...) -> None: ...

class TestProviderConnectionRequest(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    def __init__(self, provider: _Optional[_Union[Provider, _Mapping]] = ...) -> None: ...

class TestProviderConnectionResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ValidationResult
    def __init__(self, result: _Optional[_Union[ValidationResult, _Mapping]] = ...) -> None: ...

class ProjectProvider(_message.Message):
    __slots__ = ("project", "provider", "default", "assign_time")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_TIME_FIELD_NUMBER: _ClassVar[int]
    project: str
    provider: Provider
    default: bool
    assign_time: _timestamp_pb2.Timestamp
    def __init__(self, project: _Optional[str] = ..., provider: _Optional[_Union[Provider, _Mapping]] = ..., default: _Optional[bool] = ..., assign_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssignProviderRequest(_message.Message):
    __slots__ = ("project", "provider", "default")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    project: str
    provider: str
    default: bool
    def __init__(self, project: _Optional[str] = ..., provider: _Optional[str] = ..., default: _Optional[bool] = ...) -> None: ...

class AssignProviderResponse(_message.Message):
    __slots__ = ("project_provider",)
    PROJECT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    project_provider: ProjectProvider
    def __init__(self, project_provider: _Optional[_Union[ProjectProvider, _Mapping]] = ...) -> None: ...

class UnassignProviderRequest(_message.Message):
    __slots__ = ("project", "provider")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    project: str
    provider: str
    def __init__(self, project: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class UnassignProviderResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProjectProvidersRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: str
    def __init__(self, project: _Optional[str] = ...) -> None: ...

class ListProjectProvidersResponse(_message.Message):
    __slots__ = ("project_providers",)
    PROJECT_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    project_providers: _containers.RepeatedCompositeFieldContainer[ProjectProvider]
    def __init__(self, project_providers: _Optional[_Iterable[_Union[ProjectProvider, _Mapping]]] = ...) -> None: ...
