"""Bounds on the gateway's server streams (WatchGenerationJob, ExportStagedTexts, ExportTasks).

Each open stream costs this gateway a coroutine and a downstream stream, and the task
store a thread: so one caller gets a bounded share. Limits are per gateway process (a
deployment with N replicas admits N times as many); the task store bounds its own
streams whatever the number of gateways (task_store Settings.max_streams).

- `max_streams_per_token`, `max_streams_per_project`, `max_streams`: streams open at
  once; one more is refused with RESOURCE_EXHAUSTED and a QuotaFailure naming the
  token, the project or the gateway. No RetryInfo: what frees a slot is the caller
  closing one of its streams, not time.
- `max_stream_seconds`: how long one stream may last. A Watch then ends cleanly (OK):
  calling WatchGenerationJob again resumes it, starting with the job's current
  snapshot. An export still running then fails with DEADLINE_EXCEEDED (a truncated
  file must not look complete); a client that reads at any reasonable pace finishes
  long before. The task store's side is released at that moment; a message already
  waiting for a client that stopped reading stays until it reads again or leaves, and
  its stream keeps its slot until then, so such a client only uses up its own share.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator

from prometheus_client import Counter as MetricCounter
from prometheus_client import Gauge

from services.runtime.errors import QuotaViolation, ResourceExhausted
from services.vocabulary.reasons import Reason

OPEN_STREAMS = Gauge("synthtasks_gateway_open_streams", "Server streams open on this gateway.")
STREAM_MESSAGES = MetricCounter(
    "synthtasks_gateway_stream_messages_total", "Messages relayed to callers on server streams (Watch, Export)."
)


class StreamLimiter:
    def __init__(self, *, per_token: int, per_project: int, total: int) -> None:
        self._per_token = per_token
        self._per_project = per_project
        self._total = total
        self._by_token: Counter[str] = Counter()
        self._by_project: Counter[str] = Counter()
        self._open = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, token: str, project: str) -> Iterator[None]:
        """One stream slot of `token` in `project` for the block; ResourceExhausted when none."""
        with self._lock:
            refused = self._refusal(token, project)
            if refused is None:
                self._by_token[token] += 1
                self._by_project[project] += 1
                self._open += 1
        if refused is not None:
            raise refused
        OPEN_STREAMS.inc()
        try:
            yield
        finally:
            OPEN_STREAMS.dec()
            with self._lock:
                self._open -= 1
                for counts, key in ((self._by_token, token), (self._by_project, project)):
                    counts[key] -= 1
                    if not counts[key]:
                        del counts[key]

    def open_streams(self) -> int:
        with self._lock:
            return self._open

    def _refusal(self, token: str, project: str) -> ResourceExhausted | None:
        for subject, in_use, limit, quota in (
            (token, self._by_token[token], self._per_token, "streams-per-token"),
            (f"projects/{project}", self._by_project[project], self._per_project, "streams-per-project"),
            ("gateway", self._open, self._total, "streams-per-gateway"),
        ):
            if in_use >= limit:
                return ResourceExhausted(
                    f"{subject} has {in_use} streams open, its limit; close one first",
                    [QuotaViolation(subject, f"{quota}: limit {limit}, in use {in_use}")],
                    reason=Reason.TOO_MANY_STREAMS,
                )
        return None
