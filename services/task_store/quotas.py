"""Per-project quotas on generation work, checked where jobs are recorded.

Three quotas, each with a deployment-wide default and optional per-project values
(settings `quota_*` and `project_quotas`); 0 means no limit:

- `texts-queued-or-running`: texts asked for by the project's QUEUED and RUNNING jobs
  and not yet produced or failed, counting the new job's `text_count`;
- `jobs-running`: QUEUED and RUNNING jobs of the project, counting the new one;
- `jobs-created-per-minute`: jobs the project created in the last 60 seconds.

The check runs inside the transaction that inserts the job, under a per-project lock
(repository.py), so concurrent creations cannot both slip under a limit, and a refused
call writes nothing (the gateway enqueues only what the task store recorded). Only the
per-minute quota comes with a RetryInfo: it frees itself as the window slides, while the
other two free up only when jobs end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, Field

from services.runtime.errors import QuotaViolation, ResourceExhausted

TEXTS_QUEUED_OR_RUNNING = "texts-queued-or-running"
JOBS_RUNNING = "jobs-running"
JOBS_CREATED_PER_MINUTE = "jobs-created-per-minute"
QUOTAS = (TEXTS_QUEUED_OR_RUNNING, JOBS_RUNNING, JOBS_CREATED_PER_MINUTE)
RATE_WINDOW_SECONDS = 60.0

QUOTA_REFUSALS = Counter(
    "synthtasks_quota_refusals_total",
    "Job creations refused because a project quota was reached, by quota.",
    ["quota"],
)


class QuotaLimits(BaseModel):
    """One project's limits; 0 means no limit."""

    texts_queued_or_running: int = Field(10_000, ge=0)
    jobs_running: int = Field(10, ge=0)
    jobs_created_per_minute: int = Field(30, ge=0)

    def limit_of(self, quota: str) -> int:
        return {
            TEXTS_QUEUED_OR_RUNNING: self.texts_queued_or_running,
            JOBS_RUNNING: self.jobs_running,
            JOBS_CREATED_PER_MINUTE: self.jobs_created_per_minute,
        }[quota]


@dataclass(frozen=True)
class QuotaUsage:
    texts_queued_or_running: int
    jobs_running: int
    jobs_created_last_minute: int
    # Seconds until the oldest job of the last minute leaves the window (0 when none).
    window_frees_in_seconds: float

    def usage_of(self, quota: str) -> int:
        return {
            TEXTS_QUEUED_OR_RUNNING: self.texts_queued_or_running,
            JOBS_RUNNING: self.jobs_running,
            JOBS_CREATED_PER_MINUTE: self.jobs_created_last_minute,
        }[quota]


class QuotaPolicy:
    """The limits of each project: its own values where configured, else the defaults."""

    def __init__(self, defaults: QuotaLimits, per_project: dict[str, QuotaLimits] | None = None) -> None:
        self._defaults = defaults
        self._per_project = dict(per_project or {})

    def limits_for(self, project: str) -> QuotaLimits:
        return self._per_project.get(project, self._defaults)


def refusal(project: str, limits: QuotaLimits, usage: QuotaUsage, new_texts: int) -> ResourceExhausted | None:
    """The error refusing one more job of `new_texts` texts, or None when it fits."""
    wanted = {
        TEXTS_QUEUED_OR_RUNNING: usage.texts_queued_or_running + new_texts,
        JOBS_RUNNING: usage.jobs_running + 1,
        JOBS_CREATED_PER_MINUTE: usage.jobs_created_last_minute + 1,
    }
    subject = f"projects/{project}"
    exceeded = [quota for quota in QUOTAS if limits.limit_of(quota) and wanted[quota] > limits.limit_of(quota)]
    if not exceeded:
        return None
    violations = []
    for quota in exceeded:
        QUOTA_REFUSALS.labels(quota).inc()
        violations.append(
            QuotaViolation(
                subject,
                f"{quota}: limit {limits.limit_of(quota)}, in use {usage.usage_of(quota)}, this job would make it"
                f" {wanted[quota]}",
            )
        )
    only_the_rate = exceeded == [JOBS_CREATED_PER_MINUTE]
    return ResourceExhausted(
        f"{subject} is over its quota: " + "; ".join(v.description for v in violations),
        violations,
        retry_after_seconds=usage.window_frees_in_seconds if only_the_rate else None,
    )


class QuotaUsageCollector:
    """Prometheus collector: each project's usage of each quota, read at scrape time
    (one query over unfinished and recent jobs), next to its limit."""

    def __init__(self, read_usage: Callable[[], dict[str, QuotaUsage]], policy: QuotaPolicy) -> None:
        # read_usage() -> dict[project, QuotaUsage], for projects using anything.
        self._read_usage = read_usage
        self._policy = policy

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._usage_family(), self._limit_family()]

    def collect(self) -> list[GaugeMetricFamily]:
        usage_family, limit_family = self._usage_family(), self._limit_family()
        for project, usage in sorted(self._read_usage().items()):
            limits = self._policy.limits_for(project)
            for quota in QUOTAS:
                usage_family.add_metric([project, quota], usage.usage_of(quota))
                limit_family.add_metric([project, quota], limits.limit_of(quota))
        return [usage_family, limit_family]

    @staticmethod
    def _usage_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "synthtasks_project_quota_usage",
            "Current use of each project quota (projects with unfinished or recent jobs).",
            labels=["project", "quota"],
        )

    @staticmethod
    def _limit_family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "synthtasks_project_quota_limit",
            "Limit of each project quota (0: no limit), for the projects in synthtasks_project_quota_usage.",
            labels=["project", "quota"],
        )
