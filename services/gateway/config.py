"""Settings of the gateway (environment variables SYNTHTASKS_GATEWAY_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.generation_queue.messages import DEFAULT_SLOTS_PER_MESSAGE
from services.runtime.config import CommonSettings
from services.runtime.server import ListenerTls
from services.vocabulary import limits


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_GATEWAY_", extra="ignore", populate_by_name=True)

    listen_address: str = "127.0.0.1:50051"
    metrics_port: int = 9101
    registry_address: str = "127.0.0.1:50052"
    task_store_address: str = "127.0.0.1:50053"
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="SYNTHTASKS_REDIS_URL")
    redis_namespace: str = Field("synthtasks", validation_alias="SYNTHTASKS_REDIS_NAMESPACE")
    # Deadline of every call to an internal service (streams excepted).
    downstream_timeout_seconds: float = Field(10.0, gt=0, le=300)
    # Live provider checks wait on the provider: they get their own, longer deadline.
    validation_timeout_seconds: float = Field(30.0, gt=0, le=300)
    # At most what the task store accepts, so a job the gateway admits is never refused later.
    max_text_count: int = Field(1000, ge=1, le=limits.MAX_TEXT_COUNT)
    max_prompt_chars: int = Field(20_000, ge=1, le=limits.MAX_PROMPT_CHARS)
    # Slots per queue message (generation_queue/messages.py says why 64).
    slots_per_message: int = Field(DEFAULT_SLOTS_PER_MESSAGE, ge=1, le=1000)
    # TLS of the public port, apart from the internal links' mTLS (SYNTHTASKS_TLS_*):
    # certificate and key (both unset: plaintext), and optionally the CA that public
    # clients' certificates must be signed by (unset: clients need no certificate).
    public_tls_cert_file: Path | None = None
    public_tls_key_file: Path | None = None
    public_tls_client_ca_file: Path | None = None
    # How long a token's identity is cached; a revoked token stops working after this.
    auth_cache_seconds: float = Field(30.0, ge=0)
    # Failed authentications per client address (auth.py): a burst, then this many a
    # minute; past that, unknown tokens from that address get RESOURCE_EXHAUSTED.
    auth_failures_per_minute: float = Field(30.0, gt=0)
    auth_failure_burst: int = Field(20, ge=1)
    # Threads running unary calls (each waits on a downstream call); streams use none.
    max_workers: int = Field(64, ge=4)
    # Server streams (Watch, Export) open at once on this gateway (streams.py).
    max_streams: int = Field(256, ge=1)
    max_streams_per_project: int = Field(32, ge=1)
    max_streams_per_token: int = Field(16, ge=1)
    # How long one stream may last: a Watch then ends (OK; call again to resume), an
    # unfinished export fails with DEADLINE_EXCEEDED.
    max_stream_seconds: float = Field(900.0, gt=0)
    # Stalled-job recovery (stalled_jobs.py): an unfinished job without progress for this
    # long is reported `stalled` in the API and checked in Redis; its slot ranges are
    # enqueued again only if none of its work is left there (backlog, queue, delay queue,
    # workers), so a job that merely waits is never duplicated and this can be short.
    stalled_job_seconds: float = Field(60.0, gt=0)
    # How often the gateway looks for stalled jobs. With the threshold, the bound on how
    # long lost work waits: 60 + 15 s by default, within the 2 minutes operations promise.
    stalled_job_check_seconds: float = Field(15.0, gt=0)

    @model_validator(mode="after")
    def _public_tls_needs_both_files(self) -> Settings:
        if (self.public_tls_cert_file is None) != (self.public_tls_key_file is None):
            raise ValueError("set both SYNTHTASKS_GATEWAY_PUBLIC_TLS_CERT_FILE and ..._KEY_FILE, or neither")
        if self.public_tls_client_ca_file is not None and self.public_tls_cert_file is None:
            raise ValueError("SYNTHTASKS_GATEWAY_PUBLIC_TLS_CLIENT_CA_FILE needs the public certificate and key")
        return self

    def public_listener_tls(self) -> ListenerTls | None:
        if self.public_tls_cert_file is None or self.public_tls_key_file is None:
            return None
        return ListenerTls(self.public_tls_cert_file, self.public_tls_key_file, self.public_tls_client_ca_file)
