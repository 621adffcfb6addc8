from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AuthenticateTokenRequest(_message.Message):
    __slots__ = ("token_sha256",)
    TOKEN_SHA256_FIELD_NUMBER: _ClassVar[int]
    token_sha256: str
    def __init__(self, token_sha256: _Optional[str] = ...) -> None: ...

class AuthenticateTokenResponse(_message.Message):
    __slots__ = ("authenticated", "admin", "projects", "token")
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    authenticated: bool
    admin: bool
    projects: _containers.RepeatedScalarFieldContainer[str]
    token: str
    def __init__(self, authenticated: _Optional[bool] = ..., admin: _Optional[bool] = ..., projects: _Optional[_Iterable[str]] = ..., token: _Optional[str] = ...) -> None: ...
