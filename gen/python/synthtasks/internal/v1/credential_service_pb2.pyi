import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from synthtasks.v1 import provider_service_pb2 as _provider_service_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderCredential(_message.Message):
    __slots__ = ("name", "kind", "endpoint", "deployment", "api_version", "model", "organization", "api_key", "limits", "max_choices_per_request", "request_timeout", "etag", "structured_output")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MAX_CHOICES_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    STRUCTURED_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: _provider_service_pb2.ProviderKind
    endpoint: str
    deployment: str
    api_version: str
    model: str
    organization: str
    api_key: str
    limits: _provider_service_pb2.ProviderLimits
    max_choices_per_request: int
    request_timeout: _duration_pb2.Duration
    etag: str
    structured_output: _provider_service_pb2.StructuredOutputMode
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[_provider_service_pb2.ProviderKind, str]] = ..., endpoint: _Optional[str] = ..., deployment: _Optional[str] = ..., api_version: _Optional[str] = ..., model: _Optional[str] = ..., organization: _Optional[str] = ..., api_key: _Optional[str] = ..., limits: _Optional[_Union[_provider_service_pb2.ProviderLimits, _Mapping]] = ..., max_choices_per_request: _Optional[int] = ..., request_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., etag: _Optional[str] = ..., structured_output: _Optional[_Union[_provider_service_pb2.StructuredOutputMode, str]] = ...) -> None: ...

class GetProviderCredentialRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetProviderCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: ProviderCredential
    def __init__(self, credential: _Optional[_Union[ProviderCredential, _Mapping]] = ...) -> None: ...
