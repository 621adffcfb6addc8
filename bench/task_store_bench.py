"""Task store benchmark: 100,000 staged texts in one project.

    python bench/task_store_bench.py [--texts 100000] [--keep]

Starts the task store as a subprocess (`python -m services.task_store`) on its own
fresh database, fills it through AppendResults in batches of 1,000, then measures:

- listing: p50/p99 of a 100-row page at the start and at the end (a deep keyset page);
- CSV export through gRPC: total time, time to first chunk, and the peak RSS growth of
  the task store process and of this client (VmHWM in /proc/PID/status, reset before
  the export through /proc/PID/clear_refs where the kernel allows it);
- import of every staged text of the project as tasks (one ImportStagedTexts call);
- append -> watcher latency (AppendResults of one text until WatchGenerationJob delivers it).

Needs Postgres (SYNTHTASKS_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from psycopg.conninfo import make_conninfo
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import generation_service_pb2_grpc, task_service_pb2_grpc
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.runtime.channels import internal_channel, raw_channel
from services.runtime.config import CommonSettings, TlsSettings

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "bench"
BATCH = 1000
TEXTS_PER_JOB = 10_000
TARGETS = {
    "import": 5.0,
    "export_total": 5.0,
    "export_first_chunk": 0.200,
    "export_rss_mb": 100.0,
}

WORDS = [
    "the",
    "annotation",
    "team",
    "needs",
    "more",
    "examples",
    "of",
    "rare",
    "entities",
    "such",
    "as",
    "Köln",
    "Zürich",
    "São",
    "Paulo",
    "invoices",
    "medication",
    "dosage",
    "5",
    "mg",
    "twice",
    "daily",
    "contract",
    "clause",
    "liability",
    "warranty",
    "shipment",
    "delayed",
    "because",
    "of",
    "weather",
    "customer",
    "complained",
    "about",
    "the",
    "café",
    "👩\u200d🔬",
    "مرحبا",
    "שלום",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int | str) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def synthetic_text(index: int) -> str:
    """About 200 characters, unique (its index leads), mixed scripts and emoji."""
    rng = index * 2654435761 % 2**32
    words = [WORDS[(rng + i * 7919) % len(WORDS)] for i in range(28)]
    return f"Example {index}: " + " ".join(words) + "."


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wait_until_serving(address: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """The port opens only after migrations, and the server reports SERVING as it opens."""
    with raw_channel(address, TlsSettings()) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout, wait_for_ready=True
            )
        except grpc.RpcError as error:
            raise RuntimeError(f"the task store did not start (exit code {process.poll()}): {error.code()}") from None
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError("the task store is not SERVING")


def fill(jobs, count: int) -> list[str]:
    names = []
    for start_job in range(0, count, TEXTS_PER_JOB):
        size = min(TEXTS_PER_JOB, count - start_job)
        job = jobs.CreateJob(
            job_store_pb2.CreateJobRequest(
                parent=f"projects/{PROJECT}",
                generation_job=generation_pb2.GenerationJob(
                    prompt="Write an example about {topic}.",
                    temperature=0.8,
                    text_count=size,
                    provider="providers/bench",
                    model="bench-model",
                    tags=["bench", "rare-entity"],
                ),
            )
        ).generation_job
        names.append(job.name)
        for start in range(0, size, BATCH):
            results = [
                job_store_pb2.SlotResult(
                    slot=slot,
                    text=job_store_pb2.GeneratedText(
                        text=synthetic_text(start_job + slot),
                        model="bench-model-2024",
                        prompt_tokens=40,
                        completion_tokens=60,
                        finish_reason="stop",
                        variables={"topic": "invoices"},
                    ),
                )
                for slot in range(start, min(start + BATCH, size))
            ]
            jobs.AppendResults(job_store_pb2.AppendResultsRequest(name=job.name, results=results), timeout=60)
    return names


def time_page(tasks, token: str, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        tasks.ListStagedTexts(
            task_pb2.ListStagedTextsRequest(parent=f"projects/{PROJECT}", page_size=100, page_token=token), timeout=10
        )
        timings.append(time.perf_counter() - started)
    return timings


def last_page_token(tasks) -> tuple[str, int, float]:
    """Walk every page; the token of the last one, the page count and the slowest page."""
    token, pages, slowest = "", 0, 0.0
    while True:
        started = time.perf_counter()
        page = tasks.ListStagedTexts(
            task_pb2.ListStagedTextsRequest(parent=f"projects/{PROJECT}", page_size=100, page_token=token), timeout=10
        )
        slowest = max(slowest, time.perf_counter() - started)
        pages += 1
        if not page.next_page_token:
            return token, pages, slowest
        token = page.next_page_token


def export_csv(tasks, server_pid: int) -> dict[str, float]:
    server_reset = reset_peak(server_pid)
    client_reset = reset_peak("self")
    server_before = memory_kb(server_pid, "VmRSS") if server_reset else memory_kb(server_pid, "VmHWM")
    client_before = memory_kb("self", "VmRSS") if client_reset else memory_kb("self", "VmHWM")
    started = time.perf_counter()
    first_chunk = None
    size = chunks = 0
    for chunk in tasks.ExportStagedTexts(
        task_pb2.ExportStagedTextsRequest(parent=f"projects/{PROJECT}", format=task_pb2.EXPORT_FORMAT_CSV), timeout=120
    ):
        if first_chunk is None:
            first_chunk = time.perf_counter() - started
        size += len(chunk.data)
        chunks += 1
    total = time.perf_counter() - started
    return {
        "total": total,
        "first_chunk": first_chunk or total,
        "bytes": size,
        "chunks": chunks,
        "server_growth_mb": (memory_kb(server_pid, "VmHWM") - server_before) / 1024,
        "client_growth_mb": (memory_kb("self", "VmHWM") - client_before) / 1024,
        "peak_reset": server_reset and client_reset,
    }


def watch_latency(jobs, generation, rounds: int = 200) -> list[float]:
    job = jobs.CreateJob(
        job_store_pb2.CreateJobRequest(
            parent=f"projects/{PROJECT}-watch",
            generation_job=generation_pb2.GenerationJob(
                prompt="p", temperature=1, text_count=rounds, provider="providers/bench"
            ),
        )
    ).generation_job
    stream = generation.WatchGenerationJob(generation_pb2.WatchGenerationJobRequest(name=job.name), timeout=120)
    next(stream)
    latencies = []
    for slot in range(rounds):
        started = time.perf_counter()
        jobs.AppendResults(
            job_store_pb2.AppendResultsRequest(
                name=job.name,
                results=[job_store_pb2.SlotResult(slot=slot, text=job_store_pb2.GeneratedText(text=f"watched {slot}"))],
            )
        )
        event = next(stream)
        while not event.HasField("staged_text"):
            event = next(stream)
        latencies.append(time.perf_counter() - started)
    stream.cancel()
    return latencies


def machine_context() -> str:
    """CPUs, load and CPU pressure: this machine may be shared, and wall times say so."""
    load = os.getloadavg()
    pressure = ""
    pressure_file = Path("/proc/pressure/cpu")
    if pressure_file.exists():
        fields = dict(item.split("=") for item in pressure_file.read_text().split()[1:4])
        pressure = f", CPU pressure {fields['avg60']}% (some, 60 s)"
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{pressure}"


def postgres_cpu_seconds(admin_url: str, database: str) -> float | None:
    """CPU time used so far by the backends connected to `database` (None when their
    /proc entries cannot be read: Postgres on another host or user)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    total = 0.0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, PermissionError):
        return None
    return total


def verdict(value: float, target: float) -> str:
    return "ok" if value < target else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    server_url = os.environ.get("SYNTHTASKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database = f"synthtasks_bench_{uuid.uuid4().hex[:10]}"
    database_url = make_conninfo(server_url, dbname=database)
    token = secrets.token_urlsafe(24)
    address = f"127.0.0.1:{free_port()}"
    environment = {
        **os.environ,
        "SYNTHTASKS_INTERNAL_TOKEN": token,
        "SYNTHTASKS_LOG_LEVEL": "WARNING",
        "SYNTHTASKS_TASK_STORE_DATABASE_URL": database_url,
        "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS": address,
        "SYNTHTASKS_TASK_STORE_METRICS_PORT": "0",
    }
    server = subprocess.Popen([sys.executable, "-m", "services.task_store", "serve"], env=environment, cwd=ROOT)
    try:
        wait_until_serving(address, server)
        settings = CommonSettings(internal_token=token)
        with internal_channel(address, settings) as channel:
            jobs = job_store_service_pb2_grpc.JobStoreServiceStub(channel)
            generation = generation_service_pb2_grpc.GenerationServiceStub(channel)
            tasks = task_service_pb2_grpc.TaskServiceStub(channel)

            print(
                f"task store benchmark: {args.texts:,} staged texts in one project "
                f"(server pid {server.pid}, database {database})"
            )
            print(f"  machine at start: {machine_context()}")
            started = time.perf_counter()
            fill(jobs, args.texts)
            filling = time.perf_counter() - started
            print(
                f"  fill through AppendResults (batches of {BATCH:,})   {filling:8.2f} s   "
                f"({args.texts / filling:,.0f} texts/s)"
            )

            time_page(tasks, "", 20)  # warm up connections and plans
            first = time_page(tasks, "", 200)
            deep_token, pages, slowest = last_page_token(tasks)
            deep = time_page(tasks, deep_token, 200)
            print(
                f"  list 100 texts, first page          p50 {percentile(first, 0.5) * 1000:7.2f} ms   "
                f"p99 {percentile(first, 0.99) * 1000:7.2f} ms"
            )
            print(
                f"  list 100 texts, page {pages:,} (last)    p50 {percentile(deep, 0.5) * 1000:7.2f} ms   "
                f"p99 {percentile(deep, 0.99) * 1000:7.2f} ms"
            )
            print(f"  slowest of all {pages:,} pages while walking   {slowest * 1000:7.2f} ms")

            exported = export_csv(tasks, server.pid)
            print(
                f"  CSV export                          {exported['total']:8.2f} s    "
                f"target < {TARGETS['export_total']:.0f} s     "
                f"{verdict(exported['total'], TARGETS['export_total'])}   "
                f"({exported['bytes'] / 2**20:.1f} MiB in {exported['chunks']:,} chunks)"
            )
            print(
                f"  CSV export, time to first chunk     {exported['first_chunk'] * 1000:8.1f} ms   target < 200 ms   "
                f"{verdict(exported['first_chunk'], TARGETS['export_first_chunk'])}"
            )
            note = "" if exported["peak_reset"] else "  (peak not resettable: growth over the process lifetime peak)"
            print(
                f"  CSV export, task store peak RSS +   {exported['server_growth_mb']:8.1f} MB   target < 100 MB   "
                f"{verdict(exported['server_growth_mb'], TARGETS['export_rss_mb'])}{note}"
            )
            print(
                f"  CSV export, client peak RSS +       {exported['client_growth_mb']:8.1f} MB   target < 100 MB   "
                f"{verdict(exported['client_growth_mb'], TARGETS['export_rss_mb'])}"
            )

            cpu_before = postgres_cpu_seconds(server_url, database)
            started = time.perf_counter()
            imported = tasks.ImportStagedTexts(
                task_pb2.ImportStagedTextsRequest(parent=f"projects/{PROJECT}", filter=task_pb2.StagedTextFilter()),
                timeout=120,
            )
            importing = time.perf_counter() - started
            cpu_after = postgres_cpu_seconds(server_url, database)
            cpu = (
                f"   (Postgres CPU {cpu_after - cpu_before:.2f} s)"
                if cpu_before is not None and cpu_after is not None
                else ""
            )
            print(
                f"  import {imported.created_count:,} staged texts as tasks  {importing:8.2f} s    "
                f"target < {TARGETS['import']:.0f} s     "
                f"{verdict(importing, TARGETS['import'])}{cpu}"
            )

            latencies = watch_latency(jobs, generation)
            print(
                f"  append -> watcher event             p50 {percentile(latencies, 0.5) * 1000:7.2f} ms   "
                f"p99 {percentile(latencies, 0.99) * 1000:7.2f} ms"
            )
            print(f"  machine at end: {machine_context()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
