"""One project against the others: the figures of issue #12, next to those of another
checkout (today's code) when given.

    python bench/tenant_bench.py [--today-root /path/to/main/checkout] [--json out.json]

Each run starts the registry, the task store and the gateway as subprocesses (from this
checkout, or from --today-root for the "today" column) on fresh databases and a Redis
namespace of their own, with default settings, then measures:

1. streams: one project token opens 200 WatchGenerationJob streams; p50/p99 (and
   failures) of another project's ListStagedTexts and of the gateway's health check
   while they are open; how many streams were refused;
2. exports: 32 ExportStagedTexts over a 20,000-text project, opened and left unread;
   task-store RSS before and with them open, p99 of another project's
   ListStagedTexts, Postgres connections idle in transaction;
3. quota: 2,000 CreateGenerationJob calls of 1,000 texts from one project token; total
   time, accepted, refused, queue messages enqueued;
4. auth: 1,000 calls with random bearer tokens; their rate, how many reached the
   registry (its AuthenticateToken count).

Loopback only; every load is bounded in count and time. The providers point at an
address nothing listens on: no worker runs, no provider is called.
Needs Postgres and Redis (SYNTHTASKS_BENCH_POSTGRES_URL, SYNTHTASKS_BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import grpc
import psycopg
import redis
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from psycopg.conninfo import make_conninfo
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import (
    generation_service_pb2_grpc,
    provider_service_pb2_grpc,
    task_service_pb2_grpc,
    token_service_pb2_grpc,
)
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

REPO_ROOT = Path(__file__).resolve().parent.parent
QUEUE = "generation"  # the Dramatiq queue's Redis list is {namespace}:{QUEUE}
STREAMS = 200
EXPORTS = 32
EXPORT_TEXTS = 20_000
FLOOD_JOBS = 2_000
BAD_TOKENS = 1_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None}
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(0, -(-len(ordered) * 99 // 100) - 1)] * 1000, 1),
    }


def timed_calls(call: Callable[[], object], count: int) -> dict[str, float]:
    """`count` calls one after the other: latency percentiles of the successes, and failures."""
    latencies, failures = [], 0
    for _ in range(count):
        started = time.perf_counter()
        try:
            call()
        except grpc.RpcError:
            failures += 1
            continue
        latencies.append(time.perf_counter() - started)
    return {**percentiles(latencies), "failed": failures}


class System:
    """The three services as subprocesses of `code_root`, with default settings."""

    def __init__(
        self, code_root: Path, workdir: Path, postgres_url: str, redis_url: str, extra_env: dict[str, str]
    ) -> None:
        self.code_root = code_root
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        suffix = uuid.uuid4().hex[:8]
        self.databases = [f"synthtasks_bench_registry_{suffix}", f"synthtasks_bench_tasks_{suffix}"]
        self.namespace = f"synthtasks-bench-{suffix}"
        self.ports = {name: free_port() for name in ("registry", "task_store", "gateway", "registry_metrics")}
        self.internal_token = secrets.token_urlsafe(24)
        self.env = {
            **os.environ,
            "PYTHONPATH": f"{code_root}:{code_root / 'gen' / 'python'}",
            "SYNTHTASKS_INTERNAL_TOKEN": self.internal_token,
            "SYNTHTASKS_REDIS_URL": redis_url,
            "SYNTHTASKS_REDIS_NAMESPACE": self.namespace,
            "SYNTHTASKS_REGISTRY_LISTEN_ADDRESS": f"127.0.0.1:{self.ports['registry']}",
            "SYNTHTASKS_REGISTRY_METRICS_PORT": str(self.ports["registry_metrics"]),
            "SYNTHTASKS_REGISTRY_DATABASE_URL": make_conninfo(postgres_url, dbname=self.databases[0]),
            "SYNTHTASKS_REGISTRY_MASTER_KEYS": Fernet.generate_key().decode(),
            "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS": f"127.0.0.1:{self.ports['task_store']}",
            "SYNTHTASKS_TASK_STORE_METRICS_PORT": "0",
            "SYNTHTASKS_TASK_STORE_DATABASE_URL": make_conninfo(postgres_url, dbname=self.databases[1]),
            "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS": f"127.0.0.1:{self.ports['gateway']}",
            "SYNTHTASKS_GATEWAY_METRICS_PORT": "0",
            "SYNTHTASKS_GATEWAY_REGISTRY_ADDRESS": f"127.0.0.1:{self.ports['registry']}",
            "SYNTHTASKS_GATEWAY_TASK_STORE_ADDRESS": f"127.0.0.1:{self.ports['task_store']}",
            **extra_env,
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.channels: list[grpc.Channel] = []

    def start(self) -> None:
        for name, module in (("registry", "services.provider_registry"), ("task_store", "services.task_store")):
            self._spawn(name, module)
        for name in ("registry", "task_store"):
            self._wait_serving(name)
        self._spawn("gateway", "services.gateway")
        self._wait_serving("gateway")
        minted = subprocess.run(
            [sys.executable, "-m", "services.provider_registry", "create-token", "--admin", "--display-name", "bench"],
            cwd=self.code_root,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.admin_token = json.loads(minted.stdout.strip().splitlines()[-1])["secret"]

    def _spawn(self, name: str, module: str) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=self.code_root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_serving(self, name: str) -> None:
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(f"127.0.0.1:{self.ports[name]}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                with contextlib.suppress(grpc.RpcError):
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return
                if time.monotonic() > deadline or self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} did not start; see {self.workdir / name}.log")
                time.sleep(0.2)

    def channel(self, token: str | None) -> grpc.Channel:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['gateway']}")
        if token:
            channel = grpc.intercept_channel(channel, _Bearer(token))
        self.channels.append(channel)
        return channel

    def job_store(self) -> job_store_service_pb2_grpc.JobStoreServiceStub:
        channel = grpc.intercept_channel(
            grpc.insecure_channel(f"127.0.0.1:{self.ports['task_store']}"),
            _Metadata([("x-synthtasks-internal-token", self.internal_token)]),
        )
        self.channels.append(channel)
        return job_store_service_pb2_grpc.JobStoreServiceStub(channel)

    def registry_authentications(self) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.ports['registry_metrics']}/metrics", timeout=5).read()
        pattern = re.compile(r"^synthtasks_grpc_requests_total\{[^}]*AuthenticateToken[^}]*\} ([0-9.e+]+)$", re.M)
        return sum(float(value) for value in pattern.findall(text.decode()))

    def queue_length(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return client.llen(f"{self.namespace}:{QUEUE}")
        finally:
            client.close()

    def idle_in_transaction(self) -> int:
        """Connections of the task store idle in a transaction for more than a second."""
        with psycopg.connect(make_conninfo(self.postgres_url, dbname=self.databases[1]), autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND now() - state_change > interval '1 second'"
            ).fetchone()[0]

    def cpu_seconds(self, name: str) -> float:
        fields = Path(f"/proc/{self.processes[name].pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            for name in self.databases:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        client = redis.Redis.from_url(self.redis_url)
        for key in client.scan_iter(match=f"{self.namespace}*", count=1000):
            client.delete(key)
        client.close()


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def _details(self, details):
        return details._replace(metadata=[*(details.metadata or ()), *self._pairs])

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


class _Bearer(_Metadata):
    def __init__(self, token: str) -> None:
        super().__init__([("authorization", f"Bearer {token}")])


@contextlib.contextmanager
def running(code_root: Path, postgres_url: str, redis_url: str, extra_env: dict[str, str]) -> Iterator[System]:
    with tempfile.TemporaryDirectory(prefix="tenant-bench-") as workdir:
        system = System(code_root, Path(workdir), postgres_url, redis_url, extra_env)
        try:
            system.start()
            yield system
        finally:
            system.close()


class Api:
    def __init__(self, system: System, token: str) -> None:
        channel = system.channel(token)
        self.providers = provider_service_pb2_grpc.ProviderServiceStub(channel)
        self.tokens = token_service_pb2_grpc.TokenServiceStub(channel)
        self.generation = generation_service_pb2_grpc.GenerationServiceStub(channel)
        self.tasks = task_service_pb2_grpc.TaskServiceStub(channel)


def project_with_provider(system: System) -> tuple[str, str]:
    """A new project with a default provider; a project token's secret."""
    admin = Api(system, system.admin_token)
    project = f"b-{uuid.uuid4().hex[:8]}"
    provider = admin.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=pb.Provider(
                display_name=f"bench-{uuid.uuid4().hex[:8]}",
                kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                # Nothing listens there and no worker runs: jobs stay queued.
                endpoint="http://127.0.0.1:9/v1",
                model="bench-model",
            )
        ),
        timeout=10,
    ).provider
    admin.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project}", provider=provider.name, default=True), timeout=10
    )
    return project, project_token(system, project)


def project_token(system: System, project: str) -> str:
    admin = Api(system, system.admin_token)
    return admin.tokens.CreateToken(
        token_pb.CreateTokenRequest(
            token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[f"projects/{project}"])
        ),
        timeout=10,
    ).secret


def create_job(api: Api, project: str, text_count: int) -> gen_pb.GenerationJob:
    return api.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(
            parent=f"projects/{project}",
            generation_job=gen_pb.GenerationJob(prompt="Write a sentence.", text_count=text_count, temperature=0.5),
            request_id=uuid.uuid4().hex,
        ),
        timeout=30,
    ).generation_job


def other_project_calls(system: System) -> tuple[Callable[[], object], Callable[[], object]]:
    other = f"b-{uuid.uuid4().hex[:8]}"
    api = Api(system, project_token(system, other))
    health = health_pb2_grpc.HealthStub(system.channel(None))
    return (
        lambda: api.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent=f"projects/{other}"), timeout=2),
        lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=2),
    )


def measure_streams(system: System) -> dict:
    project, secret = project_with_provider(system)
    api = Api(system, secret)
    job = create_job(api, project, 3)
    list_call, health_call = other_project_calls(system)
    list_call()  # the other token is known before the streams open
    ended = []
    lock = threading.Lock()

    def on_done(call) -> None:
        with lock:
            ended.append(call.code())

    calls = []
    for _ in range(STREAMS):
        call = api.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name), timeout=120)
        call.add_done_callback(on_done)
        calls.append(call)
    time.sleep(3)  # let the streams reach the servers (a measurement pause, not synchronisation)
    unary = timed_calls(list_call, 20)
    health = timed_calls(health_call, 20)
    with lock:
        refused = sum(1 for code in ended if code == grpc.StatusCode.RESOURCE_EXHAUSTED)
    for call in calls:
        call.cancel()
    return {"unary": unary, "health": health, "streams_refused": refused}


def fill(system: System, project: str) -> None:
    jobs = system.job_store()
    job = jobs.CreateJob(
        store_pb.CreateJobRequest(
            parent=f"projects/{project}",
            generation_job=gen_pb.GenerationJob(
                prompt="Write a sentence.", text_count=EXPORT_TEXTS, temperature=0.5, provider="providers/bulk"
            ),
        ),
        timeout=60,
    ).generation_job
    filler = "lorem ipsum dolor sit amet " * 10
    for first in range(0, EXPORT_TEXTS, 1000):
        jobs.AppendResults(
            store_pb.AppendResultsRequest(
                name=job.name,
                results=[
                    store_pb.SlotResult(slot=slot, text=store_pb.GeneratedText(text=f"{slot} {filler}", model="m"))
                    for slot in range(first, first + 1000)
                ],
            ),
            timeout=120,
        )


def measure_exports(system: System) -> dict:
    project = f"b-{uuid.uuid4().hex[:8]}"
    fill(system, project)
    apis = [Api(system, project_token(system, project)) for _ in range(2)]
    list_call, _ = other_project_calls(system)
    list_call()
    task_store_pid = system.processes["task_store"].pid
    rss_before = rss_mb(task_store_pid)
    request = task_pb.ExportStagedTextsRequest(parent=f"projects/{project}")
    exports = [apis[i % 2].tasks.ExportStagedTexts(request, timeout=120) for i in range(EXPORTS)]
    with ThreadPoolExecutor(max_workers=EXPORTS) as pool:
        firsts = [pool.submit(lambda e=export: next(e)) for export in exports]
        wait(firsts, timeout=15)
        started = sum(1 for f in firsts if f.done() and f.exception() is None)
        # An unread export still streams up to its client's flow-control window, then
        # stalls: wait (bounded) until the task store and gateway use under 5 % CPU for a second.
        opened = time.monotonic()
        peak = rss_mb(task_store_pid)
        while time.monotonic() - opened < 60:
            before = system.cpu_seconds("task_store") + system.cpu_seconds("gateway")
            time.sleep(1)
            peak = max(peak, rss_mb(task_store_pid))
            if system.cpu_seconds("task_store") + system.cpu_seconds("gateway") - before < 0.05:
                break
        stalled_after = time.monotonic() - opened
        peak = max(peak, rss_mb(task_store_pid))
        unary = timed_calls(list_call, 20)
        idle = system.idle_in_transaction()
        for export in exports:
            export.cancel()
    return {
        "task_store_rss_mb_before": round(rss_before, 1),
        "task_store_rss_mb_with_exports": round(peak, 1),
        "exports_started": started,
        "seconds_until_stalled": round(stalled_after, 1),
        "unary": unary,
        "idle_in_transaction": idle,
    }


def measure_quota_flood(system: System) -> dict:
    project, secret = project_with_provider(system)
    api = Api(system, secret)
    queued_before = system.queue_length()
    accepted = refused = other = 0
    started = time.perf_counter()
    for _ in range(FLOOD_JOBS):
        try:
            create_job(api, project, 1000)
            accepted += 1
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                refused += 1
            else:
                other += 1
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 2),
        "accepted": accepted,
        "refused": refused,
        "other_errors": other,
        "queue_messages_added": system.queue_length() - queued_before,
    }


def measure_auth_flood(system: System) -> dict:
    lookups_before = system.registry_authentications()
    request = task_pb.ListStagedTextsRequest(parent="projects/anything")
    codes: dict[str, int] = {}
    started = time.perf_counter()
    for _ in range(BAD_TOKENS):
        stub = task_service_pb2_grpc.TaskServiceStub(system.channel(f"st_{secrets.token_urlsafe(32)}"))
        try:
            stub.ListStagedTexts(request, timeout=10)
            code = "OK"
        except grpc.RpcError as error:
            code = error.code().name
        codes[code] = codes.get(code, 0) + 1
        system.channels.pop().close()
    elapsed = time.perf_counter() - started
    return {
        "calls_per_second": round(BAD_TOKENS / elapsed),
        "codes": codes,
        "registry_lookups": int(system.registry_authentications() - lookups_before),
    }


ROOMY_STREAMS = {
    "SYNTHTASKS_GATEWAY_MAX_STREAMS_PER_TOKEN": "256",
    "SYNTHTASKS_GATEWAY_MAX_STREAMS_PER_PROJECT": "256",
    "SYNTHTASKS_TASK_STORE_MAX_WORKERS": "240",
    "SYNTHTASKS_TASK_STORE_MAX_STREAMS": "216",
}


def measure(code_root: Path, postgres_url: str, redis_url: str, *, today: bool) -> dict:
    results = {}
    phases = [("streams", measure_streams, {})]
    if not today:
        # The same 200 streams with limits raised so that all of them stay open end to end.
        phases.append(("streams_all_open", measure_streams, ROOMY_STREAMS))
    for name, phase, extra_env in (
        *phases,
        # The 20,000-text job is written directly, past the default texts quota (ignored by today's code).
        ("exports", measure_exports, {"SYNTHTASKS_TASK_STORE_QUOTA_TEXTS_QUEUED_OR_RUNNING": "0"}),
        ("quota_flood", measure_quota_flood, {}),
        ("auth_flood", measure_auth_flood, {}),
    ):
        # A fresh system per phase: one phase's leftovers never weigh on the next.
        with running(code_root, postgres_url, redis_url, extra_env) as system:
            results[name] = phase(system)
        print(f"  {name}: {json.dumps(results[name])}", flush=True)
    return results


ROWS = [
    ("unary p99 ms, 200 Watch streams open", ("streams", "unary", "p99_ms")),
    ("unary failures /20, 200 streams open", ("streams", "unary", "failed")),
    ("health p99 ms, 200 streams open", ("streams", "health", "p99_ms")),
    ("health failures /20, 200 streams open", ("streams", "health", "failed")),
    ("streams refused /200", ("streams", "streams_refused")),
    ("unary p99 ms, 200 streams all open", ("streams_all_open", "unary", "p99_ms")),
    ("health p99 ms, 200 streams all open", ("streams_all_open", "health", "p99_ms")),
    ("streams refused /200 (limits raised)", ("streams_all_open", "streams_refused")),
    ("task-store RSS MB, 32 unread exports", ("exports", "task_store_rss_mb_with_exports")),
    ("task-store RSS MB before them", ("exports", "task_store_rss_mb_before")),
    ("seconds until the exports stalled", ("exports", "seconds_until_stalled")),
    ("unary p99 ms, 32 unread exports", ("exports", "unary", "p99_ms")),
    ("unary failures /20, 32 unread exports", ("exports", "unary", "failed")),
    ("connections idle in transaction > 1 s", ("exports", "idle_in_transaction")),
    ("2,000 job creations: seconds", ("quota_flood", "seconds")),
    ("2,000 job creations: accepted", ("quota_flood", "accepted")),
    ("2,000 job creations: refused", ("quota_flood", "refused")),
    ("queue messages enqueued", ("quota_flood", "queue_messages_added")),
    ("bad-token calls per second", ("auth_flood", "calls_per_second")),
    ("registry look-ups for 1,000 bad tokens", ("auth_flood", "registry_lookups")),
]


def lookup(results: dict | None, path: tuple[str, ...]) -> object:
    value: object = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "-"
        value = value[key]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--today-root", type=Path, help="a checkout of today's code (e.g. a worktree of main)")
    parser.add_argument("--today-json", type=Path, help="today's figures from an earlier --json run (its 'today')")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    postgres_url = os.environ.get("SYNTHTASKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("SYNTHTASKS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    today = json.loads(args.today_json.read_text())["today"] if args.today_json else None
    if args.today_root:
        print(f"today ({args.today_root}):", flush=True)
        today = measure(args.today_root.resolve(), postgres_url, redis_url, today=True)
    print(f"now ({REPO_ROOT}):", flush=True)
    now = measure(REPO_ROOT, postgres_url, redis_url, today=False)
    print(f"\n{'figure':<42} {'today':>10} {'now':>10}")
    for label, path in ROWS:
        print(f"{label:<42} {lookup(today, path)!s:>10} {lookup(now, path)!s:>10}")
    print("(None: no call succeeded; the machine is shared, figures are noisy)")
    if args.json:
        args.json.write_text(json.dumps({"today": today, "now": now}, indent=2))


if __name__ == "__main__":
    main()
