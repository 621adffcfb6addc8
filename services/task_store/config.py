"""Settings of the task store (environment variables SYNTHTASKS_TASK_STORE_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.config import CommonSettings
from services.task_store.quotas import QuotaLimits, QuotaPolicy

QuotaField = Literal["texts_queued_or_running", "jobs_running", "jobs_created_per_minute"]


class Settings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHTASKS_TASK_STORE_", extra="ignore", populate_by_name=True)

    listen_address: str = "127.0.0.1:50053"
    metrics_port: int = 9103
    database_url: str = "postgresql://postgres@127.0.0.1:5432/synthtasks_tasks"
    pool_min_size: int = Field(2, ge=1)
    pool_max_size: int = Field(16, ge=1)
    # Each open WatchGenerationJob, ExportStagedTexts or ExportTasks stream holds a server thread
    # (not a connection) while it waits, so the server needs more threads than the pool
    # has connections.
    max_workers: int = Field(128, ge=8)
    # Streams open at once; more are refused (RESOURCE_EXHAUSTED) so that the other
    # max_workers - max_streams threads always serve unary calls and health checks.
    max_streams: int = Field(96, ge=1)
    # Project quotas (quotas.py), 0 = no limit; project_quotas overrides them per project,
    # as JSON: {"big-project": {"jobs_running": 50, "texts_queued_or_running": 100000}}.
    quota_texts_queued_or_running: int = Field(10_000, ge=0)
    quota_jobs_running: int = Field(10, ge=0)
    quota_jobs_created_per_minute: int = Field(30, ge=0)
    project_quotas: dict[str, dict[QuotaField, int]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _threads_left_for_unary_calls(self) -> Settings:
        if self.max_streams > self.max_workers - 4:
            raise ValueError("max_streams must leave at least 4 of max_workers for unary calls and health checks")
        return self

    def quota_policy(self) -> QuotaPolicy:
        """The defaults, and each configured project's values on top of them."""
        defaults = QuotaLimits(
            texts_queued_or_running=self.quota_texts_queued_or_running,
            jobs_running=self.quota_jobs_running,
            jobs_created_per_minute=self.quota_jobs_created_per_minute,
        )
        return QuotaPolicy(
            defaults,
            {
                project: QuotaLimits.model_validate({**defaults.model_dump(), **values})
                for project, values in self.project_quotas.items()
            },
        )
