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
    # One process keeps up to threads x slots-per-message provider calls in flight on its
    # one event loop; scale with replicas (or --processes) up to the providers' limits.
    processes: int = Field(1, ge=1, le=64)
    # Each thread hands one message (one slot range) to the event loop at a time and waits
    # for it without using CPU: 16 threads x 64 slots per message = 1,024 calls in flight
    # per process, enough for a provider allowing 512 concurrent calls of 2 s with half
    # of the messages' slots waiting their turn.
    threads: int = Field(16, ge=1, le=1024)
    # How long an idle consumer sleeps between polls of Redis (dramatiq's worker_timeout):
    # the floor of the time from enqueue to the first provider call.
    poll_interval_ms: int = Field(25, ge=5, le=5000)

    # --- the fair backlog (generation_queue/backlog.py)
    # Messages this process wants ready in the Dramatiq queue, and prefetches beyond one
    # per thread; the rest waits in the fair backlog. More only makes more work first
    # come, first served.
    queue_ready_messages: int = Field(READY_MESSAGES_PER_WORKER, ge=1, le=10_000)

    # --- waiting for capacity, stopping
    # A request whose first call would wait longer than this for its provider's capacity
    # (RPM, TPM, concurrency, a 429 pause) hands its slots back to the queue, delayed
    # until capacity is expected, instead of holding a thread and a message.
    capacity_wait_seconds: float = Field(5.0, gt=0, le=600)
    # On SIGTERM: how long the calls in flight get to end before the process exits anyway
    # (dramatiq's --worker-shutdown-timeout). Keep it below the orchestrator's grace
    # (Kubernetes terminationGracePeriodSeconds, Compose stop_grace_period).
    shutdown_grace_seconds: float = Field(100.0, gt=0, le=3600)

    # --- probes (liveness.py): /healthz and /readyz on the metrics port fail when a
    # worker process's event loop has not beaten for this long (stuck, or the process
    # frozen); a busy loop still beats every second.
    liveness_stale_seconds: float = Field(30.0, ge=2, le=3600)

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
    # processes renew theirs every quarter of it (so a loop stalled for 3/4 of it loses
    # nothing).
    lease_ttl_seconds: float = Field(2.0, gt=0.5, le=3600)

    # --- calls to the task store and the registry
    rpc_timeout_seconds: float = Field(10.0, gt=0, le=300)
    credential_ttl_seconds: float = Field(30.0, ge=0, le=3600)
    # AppendResults batching: a flush per `append_max_batch` results or `append_max_delay_ms`
    # after the first unsent one, and at the end of each message (so a one-text job waits
    # for nothing). 100 ms: about one call per 16-slot message at full speed, and progress
    # that still looks live.
    append_max_batch: int = Field(16, ge=1, le=1000)
    append_max_delay_ms: int = Field(100, ge=0, le=10_000)
