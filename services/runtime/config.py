"""Settings shared by every service; each service subclasses `CommonSettings` with its
own `env_prefix`. Shared values keep one unprefixed name (validation_alias) so a
single Kubernetes Secret or .env file feeds every service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TlsSettings(BaseSettings):
    """TLS of the links between synthtasks services; none set means plaintext (local runs).

    With a CA file set, internal servers require client certificates signed by it (mTLS)
    and clients verify servers against it. `tls_system_roots` lets clients also trust the
    system's root certificates (a server with a certificate from a public CA). The
    gateway's public port has settings of its own (gateway config: public_tls_*)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tls_cert_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_CERT_FILE")
    tls_key_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_KEY_FILE")
    tls_ca_file: Path | None = Field(None, validation_alias="SYNTHTASKS_TLS_CA_FILE")
    tls_system_roots: bool = Field(False, validation_alias="SYNTHTASKS_TLS_SYSTEM_ROOTS")


class CommonSettings(TlsSettings):
    log_level: str = Field("INFO", validation_alias="SYNTHTASKS_LOG_LEVEL")
    internal_token: SecretStr = Field(validation_alias="SYNTHTASKS_INTERNAL_TOKEN")
