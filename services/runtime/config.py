"""Settings shared by every service; each service subclasses `CommonSettings` with its
own `env_prefix`. Shared values keep one unprefixed name (validation_alias) so a
single Kubernetes Secret or .env file feeds every service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TlsSettings(BaseSettings):
    """Certificate paths for every gRPC link; none set means plaintext (local runs).

    With a CA file set, servers require client certificates (mTLS) and clients verify
    servers against it."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tls_cert_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_CERT_FILE")
    tls_key_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_KEY_FILE")
    tls_ca_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_CA_FILE")

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None


class CommonSettings(TlsSettings):
    log_level: str = Field("INFO", validation_alias="SYNTHTASKS_LOG_LEVEL")
    internal_token: SecretStr = Field(validation_alias="SYNTHTASKS_INTERNAL_TOKEN")
