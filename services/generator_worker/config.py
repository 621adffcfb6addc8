"""Settings of the generator workers (environment variables SYNTHTASKS_WORKER_*, plus the
shared SYNTHTASKS_REDIS_URL and SYNTHTASKS_REDIS_NAMESPACE)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.generation_queue.backlog import READY_MESSAGES_PER_WORKER
from services.runtime.config import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_WORKER_", extra="ignore", populate_by_name=True)

    registry_address: str = "127.0.0.1:50052"
    task_store_address: str = "127.0.0.1:50053"
    metrics_port: int = 9104
    metrics_host: str = "127.0.0.1"
    # Shared with the gateway, which enqueues on the same broker and raises stop flags.
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="SYNTHTASKS_REDIS_URL")
    redis_namespace: str = Field("synthtasks", validation_alias="SYNTHTASKS_REDIS_NAMESPACE")

    # --- processes (defaults of `synthtasks-worker` when --processes/--threads are not given)
    # One process keeps ~64 provider calls in flight on its event loop; scale with replicas
    # (or --processes) up to the provider's limits.
    processes: int = Field(1, ge=1, le=64)
    # Each thread runs one message (one slot range) at a time; 8 threads x 16 slots per
    # message gives 128 slots in hand, twice what one provider's concurrency usually allows,
    # so a message stuck on a slow slot never starves the loop.
    threads: int = Field(8, ge=1, le=256)
    # How long an idle consumer sleeps between polls of Redis (dramatiq's worker_timeout):
    # the floor of the time from enqueue to the first provider call.
    poll_interval_ms: int = Field(25, ge=5, le=5000)

    # --- the fair backlog (generation_queue/backlog.py)
    # Messages this process wants ready in the Dramatiq queue, and prefetches beyond one
    # per thread; the rest waits in the fair backlog. More only makes more work first
    # come, first served.
    queue_ready_messages: int = Field(READY_MESSAGES_PER_WORKER, ge=1, le=10_000)

    # --- redelivery of the messages of a dead worker
    # A process missing its heartbeat this long is presumed dead and its unacked messages
    # go back to the queue; heartbeats are sent every `heartbeat_interval_seconds`.
    heartbeat_timeout_ms: int = Field(5_000, ge=1_000, le=600_000)
    heartbeat_interval_seconds: float = Field(1.0, gt=0, le=60)

    # --- provider calls
    max_attempts: int = Field(12, ge=1, le=50)
    backoff_base_seconds: float = Field(0.25, gt=0, le=60)
    backoff_max_seconds: float = Field(10.0, gt=0, le=600)
    # The SDK's HTTP transport. aiohttp costs ~0.45 ms less CPU per call than the SDK's
    # default httpx one (bench/generation_bench.py), which is most of a worker's CPU;
    # httpx stays available should a provider's proxy or TLS setup need it.
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    # Used when the provider has no request_timeout of its own.
    default_request_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    # Tokens assumed for a reply when the job sets no max_output_tokens (TPM estimate).
    default_output_token_estimate: int = Field(512, ge=1)
    # Extra calls per slot of a `unique` job to replace a duplicate.
    unique_extra_calls: int = Field(3, ge=0, le=20)

    # --- shared limits
    # A concurrency lease of a process that died frees itself after this long; live
    # processes renew theirs every third of it.
    lease_ttl_seconds: float = Field(10.0, gt=0.5, le=3600)

    # --- calls to the task store and the registry
    rpc_timeout_seconds: float = Field(10.0, gt=0, le=300)
    credential_ttl_seconds: float = Field(30.0, ge=0, le=3600)
    # AppendResults batching: a flush per `append_max_batch` results or `append_max_delay_ms`
    # after the first unsent one, and at the end of each message (so a one-text job waits
    # for nothing). 100 ms: about one call per 16-slot message at full speed, and progress
    # that still looks live.
    append_max_batch: int = Field(16, ge=1, le=1000)
    append_max_delay_ms: int = Field(100, ge=0, le=10_000)
