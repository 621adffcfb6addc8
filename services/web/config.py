"""Settings of the review web app (environment variables SYNTHTASKS_WEB_*).

It is a public client of the gateway, not an internal service: it has no internal
token, only the TLS settings every client shares (SYNTHTASKS_TLS_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.runtime.config import TlsSettings


class Settings(TlsSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_WEB_", extra="ignore", populate_by_name=True)

    log_level: str = Field("INFO", validation_alias="SYNTHTASKS_LOG_LEVEL")
    listen_address: str = "127.0.0.1:8080"
    metrics_port: int = 9105
    gateway_address: str = "127.0.0.1:50051"
    # Comma-separated Fernet keys, newest first: the newest encrypts session cookies,
    # all of them decrypt, so a key can be rotated without signing everybody out.
    session_keys: SecretStr
    # A session ends this long after sign-in, whatever the user does.
    session_max_age_seconds: int = Field(8 * 3600, ge=60)
    # Behind TLS (any real deployment) cookies must only travel over HTTPS.
    secure_cookies: bool = False
    # Live job views (server-sent events) one session may hold open at once.
    max_streams_per_session: int = Field(4, ge=1, le=100)
    # Rows per page of every list; pages follow the gateway's page tokens.
    page_size: int = Field(50, ge=1, le=1000)
    # Deadline of ordinary gateway calls; live provider checks get `slow_timeout_seconds`.
    timeout_seconds: float = Field(30.0, gt=0, le=300)
    slow_timeout_seconds: float = Field(120.0, gt=0, le=600)
