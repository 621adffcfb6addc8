"""The registry's domain records, independent of protobuf and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.vocabulary import etags, names


@dataclass
class Limits:
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    max_concurrent_requests: int = 0


@dataclass
class Validation:
    state: int = 0
    message: str = ""
    latency_ms: int = 0
    validated_at: datetime | None = None


@dataclass
class ProviderRecord:
    id: str
    display_name: str
    kind: int
    endpoint: str = ""
    deployment: str = ""
    api_version: str = ""
    model: str = ""
    organization: str = ""
    # Plaintext only on the way in (create/update) and out to workers; never stored.
    api_key: str = field(default="", repr=False)
    key_hint: str = ""
    limits: Limits = field(default_factory=Limits)
    max_choices_per_request: int = 1
    request_timeout_ms: int = 0
    # Models a job may name instead of the default model (Azure: deployment).
    allowed_models: list[str] = field(default_factory=list)
    # pb.StructuredOutputMode; 0 only before create_provider fills in the kind's default.
    structured_output: int = 0
    validation: Validation = field(default_factory=Validation)
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return names.provider_name(self.id)

    @property
    def etag(self) -> str:
        return etags.etag(self.version)


@dataclass
class Assignment:
    project: str
    provider: ProviderRecord
    is_default: bool
    assigned_at: datetime


@dataclass
class TokenRecord:
    id: str
    display_name: str
    is_admin: bool
    projects: list[str]
    token_prefix: str
    created_at: datetime | None = None


@dataclass
class CallerIdentity:
    """A token as its own holder sees it, and the projects to offer it."""

    token: TokenRecord
    # For an admin token: the projects the registry knows of (suggestions, not a limit).
    known_projects: list[str] = field(default_factory=list)
