"""Settings of the task store (environment variables SYNTHTASKS_TASK_STORE_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.runtime.config import CommonSettings


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_TASK_STORE_", extra="ignore", populate_by_name=True)

    listen_address: str = "127.0.0.1:50053"
    metrics_port: int = 9103
    database_url: str = "postgresql://postgres@127.0.0.1:5432/synthtasks_tasks"
    pool_min_size: int = Field(2, ge=1)
    pool_max_size: int = Field(16, ge=1)
    # Each open WatchGenerationJob stream holds a server thread (not a connection)
    # while it waits, so the server needs more threads than the pool has connections.
    max_workers: int = Field(128, ge=8)
