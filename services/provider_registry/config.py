"""Settings of the provider registry (environment variables SYNTHTASKS_REGISTRY_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.runtime.config import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_REGISTRY_", extra="ignore", populate_by_name=True)

    listen_address: str = "127.0.0.1:50052"
    metrics_port: int = 9102
    database_url: str = "postgresql://postgres@127.0.0.1:5432/synthtasks_registry"
    # Comma-separated Fernet keys, newest first: the first encrypts, all decrypt.
    master_keys: SecretStr
    # Live checks must answer quickly: the admin waits on them.
    validation_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # False refuses provider endpoints on private, loopback and link-local addresses
    # (endpoint_policy.py); true for local development, false in production.
    allow_private_endpoints: bool = True
    pool_min_size: int = 2
    pool_max_size: int = 16
