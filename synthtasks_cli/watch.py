"""Following a generation job: a live progress bar over WatchGenerationJob.

The bar counts finished slots (produced + failed) against the requested count and
shows failures, duplicates, tokens used and the rate in texts per second. The stream
is re-opened when the connection drops (a gateway restart must not lose the watch);
a job that has ended is read once and returned, with its entity balance when it has
labels (the one of the stream's last event, which counts each text as it arrives)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from synthtasks.v1 import generation_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.errors import JobStalled, StreamLost
from synthtasks_cli.gateway import GatewayClient
from synthtasks_cli.output import enum_label

TERMINAL_STATES = frozenset(
    {pb.GENERATION_JOB_STATE_SUCCEEDED, pb.GENERATION_JOB_STATE_FAILED, pb.GENERATION_JOB_STATE_CANCELLED}
)
# Dropped streams are re-opened this many times in a row before giving up.
_RECONNECTS = 5
# CANCELLED reaches a client when the server side gave the stream up (a gateway restart,
# a dropped downstream stream): watching again is safe.
_RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED}
)


def state_label(job: pb.GenerationJob) -> str:
    return enum_label(job.state, pb.GenerationJobState, "GENERATION_JOB_STATE_")


def reason_label(reason: int) -> str:
    return enum_label(reason, pb.FailureReason, "FAILURE_REASON_")


class _Rate:
    """Texts per second since the watch first saw the job running (client clock only:
    the server's clock may differ from ours)."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._base = 0

    def update(self, job: pb.GenerationJob) -> float:
        now = time.monotonic()
        done = job.counts.produced
        if self._start is None:
            if job.state == pb.GENERATION_JOB_STATE_QUEUED:
                return 0.0
            self._start, self._base = now, done
        elapsed = now - self._start
        return (done - self._base) / elapsed if elapsed > 0.5 else 0.0


def _fields(job: pb.GenerationJob, rate: float) -> dict:
    return {
        "requested": job.counts.requested or job.text_count or "?",
        "state": state_label(job),
        "failed": job.counts.failed,
        "duplicates": job.counts.duplicates,
        "tokens": job.usage.prompt_tokens + job.usage.completion_tokens,
        "rate": rate,
    }


@dataclass(frozen=True)
class Watched:
    """How a watched job ended: its last snapshot and, for a job with labels, its balance."""

    job: pb.GenerationJob
    entity_balance: pb.EntityBalance | None


def watch_job(
    client: GatewayClient, name: str, console: Console | None, *, stall_timeout: float | None = None
) -> Watched:
    """Follow the job until it ends and return how it ended; `console=None` shows nothing.

    With `stall_timeout`, give up (JobStalled) once the job has not changed for that long."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>4.0f}/{task.fields[requested]}"),
        TextColumn("[bold]{task.fields[state]}[/bold]"),
        TextColumn("failed {task.fields[failed]} · duplicates {task.fields[duplicates]}"),
        TextColumn("{task.fields[tokens]} tokens"),
        TextColumn("{task.fields[rate]:.1f} texts/s"),
        TimeElapsedColumn(),
        console=console,
        # A bar redrawn into a log file or pipe is noise: the summary line says it all.
        disable=console is None or not console.is_terminal,
    )
    rate = _Rate()
    job = pb.GenerationJob(name=name)
    with progress:
        bar = progress.add_task(names.short(name)[:8], total=None, **_fields(job, 0.0))

        def show(snapshot: pb.GenerationJob) -> None:
            progress.update(
                bar,
                total=snapshot.counts.requested or snapshot.text_count or None,
                completed=snapshot.counts.produced + snapshot.counts.failed,
                **_fields(snapshot, rate.update(snapshot)),
            )

        failures = 0
        stalled = _StallClock(stall_timeout)
        while True:
            try:
                # With a stall limit, each stream lives at most that long, so a silent job
                # is noticed even when no event arrives at all.
                for event in client.stream(
                    client.generation.WatchGenerationJob, pb.WatchGenerationJobRequest(name=name), timeout=stall_timeout
                ):
                    failures = 0
                    job = event.generation_job
                    show(job)
                    stalled.saw(job)
                    if job.state in TERMINAL_STATES:
                        return Watched(job, event.entity_balance if event.HasField("entity_balance") else None)
            except grpc.RpcError as exc:
                expired = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and stall_timeout is not None
                if not expired and (exc.code() not in _RETRYABLE or failures >= _RECONNECTS):
                    raise
                if expired:
                    failures = -1  # our own deadline, not a failure
            # The stream ended or dropped before the job did: read the job (it may have
            # ended between two events), then re-open the stream after a short pause.
            job = client.call(client.generation.GetGenerationJob, pb.GetGenerationJobRequest(name=name)).generation_job
            show(job)
            stalled.saw(job)
            if job.state in TERMINAL_STATES:
                return Watched(job, _entity_balance(client, job))
            if stalled.expired():
                raise JobStalled(
                    f"{name} made no progress for {stall_timeout:.0f} s (state {state_label(job)}, "
                    f"{job.counts.produced} of {job.counts.requested or job.text_count} texts)"
                )
            failures += 1
            if failures > _RECONNECTS:
                raise StreamLost(
                    f"the watch of {name} kept ending before the job did; follow it with `synthtasks jobs watch {name}`"
                )
            if failures:
                time.sleep(min(2.0**failures / 4, 5.0))


def _entity_balance(client: GatewayClient, job: pb.GenerationJob) -> pb.EntityBalance | None:
    """The balance of a job that ended between two streams, which no event carried."""
    if not job.labels:
        return None
    request = pb.GetEntityBalanceRequest(scope=job.name)
    return client.call(client.generation.GetEntityBalance, request).entity_balance


class _StallClock:
    """When a job last changed (state or counts); `expired` once it has not for `limit` seconds."""

    def __init__(self, limit: float | None) -> None:
        self._limit = limit
        self._last: tuple[int, ...] | None = None
        self._changed = time.monotonic()

    def saw(self, job: pb.GenerationJob) -> None:
        key = (job.state, job.counts.produced, job.counts.failed, job.counts.duplicates)
        if key != self._last:
            self._last, self._changed = key, time.monotonic()

    def expired(self) -> bool:
        return self._limit is not None and time.monotonic() - self._changed >= self._limit


def summary(job: pb.GenerationJob) -> str:
    """One line: final state, counts, tokens, and the error when there is one."""
    counts = job.counts
    line = (
        f"{job.name} {state_label(job)}: {counts.produced} of {counts.requested or job.text_count} texts produced, "
        f"{counts.failed} failed, {counts.duplicates} duplicates, "
        f"{job.usage.prompt_tokens + job.usage.completion_tokens} tokens"
    )
    if job.start_time.seconds and job.end_time.seconds:
        elapsed = (job.end_time.ToDatetime() - job.start_time.ToDatetime()).total_seconds()
        line += f" in {elapsed:.1f} s"
    if job.error.reason or job.error.message:
        line += f"; error {reason_label(job.error.reason)}: {job.error.message}".rstrip(": ")
    return line


def balance_summary(balance: pb.EntityBalance) -> str:
    """One line: texts and spans per label, and the entities that could not be located."""
    labels = " · ".join(f"{item.label} {item.texts} texts/{item.spans} spans" for item in balance.labels)
    details = f"per value: synthtasks jobs balance {balance.scope}"
    return f"entity balance: {labels}; {balance.dropped_spans} dropped ({details})"
