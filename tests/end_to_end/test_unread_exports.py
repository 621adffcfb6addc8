"""Exports that are opened and never read pin nothing: with 32 of them open over a
20,000-text project, other projects' calls stay fast and Postgres shows no connection
idle in a transaction for longer than one page takes; every export still delivers the
whole file when finally read.

"Unread" means the client application stops reading; its gRPC transport still accepts
data up to its flow-control window (which BDP probing grows to megabytes), so each
export first streams that much, then stalls. The test waits for that (the gateway's
relayed-message counter stops moving) and measures the steady state; the burst before
it is legitimate export work, and bench/tenant_bench.py reports it."""

from __future__ import annotations

import csv
import io
import time

import psycopg
import pytest
from prometheus_client import REGISTRY
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from tests.gateway.tenant_harness import (
    P99_BOUND_SECONDS,
    fill,
    new_project,
    own_stack,
    p99,
    project_token,
    timed,
)

TEXTS = 20_000
EXPORTS = 32


@pytest.fixture(scope="module")
def stack(make_database, infra, redis_namespace):
    with own_stack(
        make_database, infra, redis_namespace, task_store_overrides={"quota_texts_queued_or_running": 0}
    ) as s:
        yield s


def wait_until_stalled(timeout: float = 120) -> None:
    """Until the gateway relays nothing for a second: every client window is full."""
    deadline = time.monotonic() + timeout
    last, still_since = None, time.monotonic()
    while time.monotonic() - still_since < 1.0:
        assert time.monotonic() < deadline, "the unread exports never stalled"
        relayed = REGISTRY.get_sample_value("synthtasks_gateway_stream_messages_total")
        if relayed != last:
            last, still_since = relayed, time.monotonic()
        time.sleep(0.05)


def long_idle_transactions(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%%' AND now() - state_change > interval '500 milliseconds'"
        ).fetchone()[0]


def test_unread_exports_pin_no_connection_and_leave_other_projects_fast(stack):
    big, other = new_project(), new_project()
    fill(stack, big, TEXTS)
    # Two tokens: one token may hold 16 streams, the project 32.
    exporters = [stack.clients(project_token(stack, big)[0]) for _ in range(2)]
    reader = stack.clients(project_token(stack, other)[0])
    request = task_pb.ExportStagedTextsRequest(parent=f"projects/{big}")
    exports = [exporters[i % 2].tasks.ExportStagedTexts(request, timeout=300) for i in range(EXPORTS)]
    first_chunks = [next(export) for export in exports]  # each started, then left unread
    assert all(chunk.file_name for chunk in first_chunks)
    assert REGISTRY.get_sample_value("synthtasks_gateway_open_streams") == EXPORTS
    wait_until_stalled()

    latencies = []
    idle_in_transaction = []
    for _ in range(20):
        latencies.append(
            timed(
                lambda: reader.tasks.ListStagedTexts(
                    task_pb.ListStagedTextsRequest(parent=f"projects/{other}"), timeout=5
                )
            )
        )
        latencies.append(
            timed(
                lambda: reader.generation.ListGenerationJobs(
                    gen_pb.ListGenerationJobsRequest(parent=f"projects/{other}"), timeout=5
                )
            )
        )
        idle_in_transaction.append(long_idle_transactions(stack.task_store_settings.database_url))
        time.sleep(0.05)  # spreads the samples over a second or more of unread exports
    assert idle_in_transaction == [0] * 20
    assert p99(latencies) < P99_BOUND_SECONDS, latencies

    # Positive control: the exports were live all along, and one read to the end is whole.
    rows = list(
        csv.reader(io.StringIO((first_chunks[0].data + b"".join(c.data for c in exports[0])).decode("utf-8-sig")))
    )
    assert len(rows) == TEXTS + 1
    for export in exports[1:]:
        export.cancel()
