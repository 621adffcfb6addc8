"""`synthtasks stack up|down|status`: every service as a local process on 127.0.0.1.

`up` checks Postgres and Redis, runs both services' migrations, starts the provider
registry and the task store, then the gateway, the review web app and N workers, waits
for each health check to answer (gRPC SERVING; the web app's /readyz), and mints an
admin token the first time (kept in the state folder, 0600, so later CLI calls from
this folder need no --token). Addresses,
ports and database URLs are the services' own settings (docs/conventions.md), read
from the environment; the CLI only derives the links between services from them.
`up` on a running stack starts only what is missing, so it is a no-op when all runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from synthtasks.v1 import token_service_pb2

from services.runtime.healthcheck import check as health_check
from synthtasks_cli.arguments import leaf, non_negative_float, positive_int
from synthtasks_cli.context import Context
from synthtasks_cli.errors import SetupError
from synthtasks_cli.gateway import ClientSettings, GatewayClient
from synthtasks_cli.output import Output, table
from synthtasks_cli.preflight import check_port_free, check_postgres, check_redis, postgres_target, split_address
from synthtasks_cli.processes import Processes, ProcessSpec, last_log_line
from synthtasks_cli.state import StateDir

REGISTRY, TASK_STORE, GATEWAY, WEB = "provider-registry", "task-store", "gateway", "web"
DEFAULT_WORKERS = 2
WORKERS_SETTING = "SYNTHTASKS_STACK_WORKERS"
DEFAULT_START_TIMEOUT = 90.0
DEFAULT_GRACE = 20.0
# A worker has no health endpoint: one that is still alive this long after its start
# got past imports and settings, where start-up failures happen.
_WORKER_SETTLE_SECONDS = 2.0
_LABELS = {
    REGISTRY: "provider registry",
    TASK_STORE: "task store",
    GATEWAY: "gateway",
    WEB: "review web app",
    "llm": "demo LLM server",
}


def _setting(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name) or default


@dataclass(frozen=True)
class Layout:
    """Where each service listens, from the same variables the services read."""

    registry: str
    task_store: str
    gateway: str
    web: str
    registry_metrics: int
    task_store_metrics: int
    gateway_metrics: int
    worker_metrics: int
    web_metrics: int
    registry_database: str
    task_store_database: str
    redis_url: str
    workers: int

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, workers: int | None = None) -> Layout:
        try:
            count = workers if workers is not None else int(_setting(env, WORKERS_SETTING, str(DEFAULT_WORKERS)))
            return cls(
                registry=_setting(env, "SYNTHTASKS_REGISTRY_LISTEN_ADDRESS", "127.0.0.1:50052"),
                task_store=_setting(env, "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS", "127.0.0.1:50053"),
                gateway=_setting(env, "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS", "127.0.0.1:50051"),
                web=_setting(env, "SYNTHTASKS_WEB_LISTEN_ADDRESS", "127.0.0.1:8080"),
                registry_metrics=int(_setting(env, "SYNTHTASKS_REGISTRY_METRICS_PORT", "9102")),
                task_store_metrics=int(_setting(env, "SYNTHTASKS_TASK_STORE_METRICS_PORT", "9103")),
                gateway_metrics=int(_setting(env, "SYNTHTASKS_GATEWAY_METRICS_PORT", "9101")),
                worker_metrics=int(_setting(env, "SYNTHTASKS_WORKER_METRICS_PORT", "9104")),
                web_metrics=int(_setting(env, "SYNTHTASKS_WEB_METRICS_PORT", "9105")),
                registry_database=_setting(
                    env, "SYNTHTASKS_REGISTRY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/synthtasks_registry"
                ),
                task_store_database=_setting(
                    env, "SYNTHTASKS_TASK_STORE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/synthtasks_tasks"
                ),
                redis_url=_setting(env, "SYNTHTASKS_REDIS_URL", "redis://127.0.0.1:6379/0"),
                workers=count,
            )
        except ValueError as exc:
            raise SetupError(f"a port or worker count in the environment is not a number: {exc}") from None

    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(1, self.workers + 1)]

    def worker_metrics_port(self, index: int) -> int:
        """Each worker process needs its own metrics port: base, base+1, … (0 keeps them off)."""
        return self.worker_metrics + index - 1 if self.worker_metrics else 0

    def service_env(self, env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
        """The environment of every service: the caller's, the stack's secrets (unless the
        caller set their own), and the links between services derived from where each listens."""
        merged = dict(env)
        for key, value in secrets.items():
            merged.setdefault(key, value)
        merged.setdefault("SYNTHTASKS_GATEWAY_REGISTRY_ADDRESS", self.registry)
        merged.setdefault("SYNTHTASKS_GATEWAY_TASK_STORE_ADDRESS", self.task_store)
        merged.setdefault("SYNTHTASKS_WORKER_REGISTRY_ADDRESS", self.registry)
        merged.setdefault("SYNTHTASKS_WORKER_TASK_STORE_ADDRESS", self.task_store)
        merged.setdefault("SYNTHTASKS_WEB_GATEWAY_ADDRESS", self.gateway)
        return merged

    @property
    def web_url(self) -> str:
        return f"http://{self.web}"

    def specs(self, env: Mapping[str, str]) -> list[ProcessSpec]:
        """Start order: registry and task store, then gateway, web app and workers."""
        specs = [
            ProcessSpec(REGISTRY, [script("synthtasks-provider-registry"), "serve"], dict(env), self.registry),
            ProcessSpec(TASK_STORE, [script("synthtasks-task-store"), "serve"], dict(env), self.task_store),
            ProcessSpec(GATEWAY, [script("synthtasks-gateway")], dict(env), self.gateway),
            ProcessSpec(WEB, [script("synthtasks-web")], dict(env), health_url=f"{self.web_url}/readyz"),
        ]
        for index, name in enumerate(self.worker_names(), start=1):
            worker_env = {**env, "SYNTHTASKS_WORKER_METRICS_PORT": str(self.worker_metrics_port(index))}
            # Each worker is its own `synthtasks-worker` (dramatiq parent + children, one
            # process by default: SYNTHTASKS_WORKER_PROCESSES), with its own pid, log and metrics port.
            specs.append(ProcessSpec(name, [script("synthtasks-worker")], worker_env))
        return specs

    def ports(self, name: str) -> list[tuple[str, int, str, str]]:
        """(host, port, setting, example) pairs a service binds."""

        def listen(address: str, setting: str) -> tuple[str, int, str, str]:
            host, port = split_address(address)
            return host, port, setting, f"{host}:{port + 10}"

        def metrics(port: int, host: str, setting: str) -> tuple[str, int, str, str]:
            return host, port, setting, str(port + 10)

        if name == REGISTRY:
            host = split_address(self.registry)[0]
            return [
                listen(self.registry, "SYNTHTASKS_REGISTRY_LISTEN_ADDRESS"),
                metrics(self.registry_metrics, host, "SYNTHTASKS_REGISTRY_METRICS_PORT"),
            ]
        if name == TASK_STORE:
            host = split_address(self.task_store)[0]
            return [
                listen(self.task_store, "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS"),
                metrics(self.task_store_metrics, host, "SYNTHTASKS_TASK_STORE_METRICS_PORT"),
            ]
        if name == GATEWAY:
            host = split_address(self.gateway)[0]
            return [
                listen(self.gateway, "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS"),
                metrics(self.gateway_metrics, host, "SYNTHTASKS_GATEWAY_METRICS_PORT"),
            ]
        if name == WEB:
            host = split_address(self.web)[0]
            return [
                listen(self.web, "SYNTHTASKS_WEB_LISTEN_ADDRESS"),
                metrics(self.web_metrics, host, "SYNTHTASKS_WEB_METRICS_PORT"),
            ]
        if name.startswith("worker-"):
            port = self.worker_metrics_port(int(name.removeprefix("worker-")))
            return [metrics(port, "127.0.0.1", "SYNTHTASKS_WORKER_METRICS_PORT")]
        return []


def http_ready(url: str, timeout: float) -> bool:
    """True when the URL answers 200 (the web app's readiness: it reaches the gateway)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status == 200
    except (OSError, ValueError):
        return False


def script(name: str) -> str:
    """A console script of this installation (next to the running Python first)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise SetupError(f"{name} is not installed; install the project with: pip install -e .")


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    address: str
    health: str
    log: str

    @property
    def running(self) -> bool:
        return self.pid is not None


class LocalStack:
    def __init__(
        self, state: StateDir, out: Output, environ: Mapping[str, str] | None = None, *, indent: str = ""
    ) -> None:
        self.state = state
        self.out = out
        self.indent = indent  # the demo nests the stack's progress lines under its steps
        self.env = dict(os.environ if environ is None else environ)
        self.processes = Processes(state)

    # --- status ----------------------------------------------------------------------

    def _expected(self) -> list[str]:
        info = self.state.stack_info()
        workers = info.get("workers", Layout.from_env(self.env).workers)
        names = [REGISTRY, TASK_STORE, GATEWAY, WEB, *(f"worker-{i}" for i in range(1, workers + 1))]
        return names + [n for n in self.processes.known() if n not in names]

    def status(self) -> list[ProcessStatus]:
        info = self.state.stack_info().get("processes", {})
        layout = Layout.from_env(self.env)
        default_address = {
            REGISTRY: layout.registry,
            TASK_STORE: layout.task_store,
            GATEWAY: layout.gateway,
            WEB: layout.web_url,
        }
        rows = []
        for name in self._expected():
            pid = self.processes.pid(name)
            address = info.get(name, {}).get("address") or default_address.get(name, "")
            if pid is None:
                health = "-"
            elif name in (REGISTRY, TASK_STORE, GATEWAY):
                health = "SERVING" if health_check(address, timeout=2.0) else "NOT SERVING"
            elif name == WEB:
                health = "SERVING" if http_ready(f"{address}/readyz", timeout=2.0) else "NOT SERVING"
            else:
                health = "running"
            rows.append(ProcessStatus(name, pid, address, health, str(self.state.log_file(name))))
        return rows

    def render_status(self, console: Console, rows: list[ProcessStatus]) -> None:
        console.print(
            table(
                ["PROCESS", "PID", "HEALTH", "ADDRESS", "LOG"],
                [
                    (_LABELS.get(r.name, r.name), r.pid or "stopped", r.health, r.address, Path(r.log).name)
                    for r in rows
                ],
            )
        )
        console.print(f"Logs: {self.state.logs}", markup=False)

    # --- up --------------------------------------------------------------------------

    def up(self, *, workers: int | None = None, start_timeout: float = DEFAULT_START_TIMEOUT) -> bool:
        """Start what is not running; returns False when everything already ran."""
        layout = Layout.from_env(self.env, workers=workers)
        self.state.create()
        env = layout.service_env(self.env, self.state.service_secrets())
        specs = layout.specs(env)
        missing = [spec for spec in specs if self.processes.pid(spec.name) is None]
        if not missing:
            self._save(layout)
            return False
        self._preflight(layout, missing)
        self._migrate(env)
        started: list[tuple[ProcessSpec, int]] = []
        try:
            backends = [s for s in missing if s.name in (REGISTRY, TASK_STORE)]
            started += self._start(backends)
            self._wait_healthy(started, start_timeout)
            front = [s for s in missing if s.name not in (REGISTRY, TASK_STORE)]
            front_started = self._start(front)
            started += front_started
            self._wait_healthy(front_started, start_timeout)
            self._wait_workers(front_started)
            gateway_address = layout.gateway
            self._ensure_admin_token(env, gateway_address)
        except BaseException:
            # Half a stack is worse than none: stop what this call started, keep the logs.
            self.processes.stop([spec.name for spec, _ in started], grace=5.0)
            raise
        self._save(layout)
        return True

    def _preflight(self, layout: Layout, missing: list[ProcessSpec]) -> None:
        seen: set[tuple[str, int]] = set()
        for url, setting in (
            (layout.registry_database, "SYNTHTASKS_REGISTRY_DATABASE_URL"),
            (layout.task_store_database, "SYNTHTASKS_TASK_STORE_DATABASE_URL"),
        ):
            target = postgres_target(url)
            if target not in seen:
                seen.add(target)
                check_postgres(url, setting)
        check_redis(layout.redis_url, "SYNTHTASKS_REDIS_URL")
        for spec in missing:
            for host, port, setting, example in layout.ports(spec.name):
                check_port_free(host, port, setting, example=example)

    def _migrate(self, env: dict[str, str]) -> None:
        for name, command in (
            (REGISTRY, [script("synthtasks-provider-registry"), "migrate"]),
            (TASK_STORE, [script("synthtasks-task-store"), "migrate"]),
        ):
            log_path = self.state.log_file(f"{name}-migrate")
            with open(log_path, "ab") as log:
                stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
                log.write(f"--- {stamp} {' '.join(command)}\n".encode())
                log.flush()
                try:
                    result = subprocess.run(
                        command,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        timeout=300,
                        cwd=self.state.root,
                    )
                except subprocess.TimeoutExpired:
                    raise SetupError(
                        f"the {_LABELS[name]} migration did not finish in 300 s (log: {log_path})"
                    ) from None
            if result.returncode != 0:
                raise SetupError(
                    f"the {_LABELS[name]} migration failed (exit {result.returncode}): "
                    f"{last_log_line(log_path)} (log: {log_path})"
                )

    def _start(self, specs: list[ProcessSpec]) -> list[tuple[ProcessSpec, int]]:
        started = []
        for spec in specs:
            started.append((spec, self.processes.start(spec)))
            self.out.note(f"{self.indent}started {_LABELS.get(spec.name, spec.name)} (pid {started[-1][1]})")
        return started

    def _exited(self, spec: ProcessSpec, code: int) -> SetupError:
        log_path = self.state.log_file(spec.name)
        return SetupError(
            f"the {_LABELS.get(spec.name, spec.name)} exited with code {code} while starting: "
            f"{last_log_line(log_path)} (log: {log_path})"
        )

    def _wait_healthy(self, started: list[tuple[ProcessSpec, int]], timeout: float) -> None:
        pending = {spec.name: (spec, pid) for spec, pid in started if spec.address or spec.health_url}
        deadline = time.monotonic() + timeout
        while pending:
            for name, (spec, pid) in list(pending.items()):
                code = self.processes.exit_code(pid)
                if code is not None:
                    raise self._exited(spec, code)
                ready = (
                    http_ready(spec.health_url, timeout=1.0)
                    if spec.health_url
                    else health_check(spec.address or "", timeout=1.0)
                )
                if ready:
                    del pending[name]
            if pending and time.monotonic() > deadline:
                waiting = ", ".join(_LABELS.get(n, n) for n in pending)
                raise SetupError(
                    f"{waiting} did not report SERVING within {timeout:.0f} s; see the logs in {self.state.logs}"
                )
            if pending:
                time.sleep(0.2)

    def _wait_workers(self, started: list[tuple[ProcessSpec, int]]) -> None:
        workers = [(spec, pid) for spec, pid in started if spec.address is None and spec.health_url is None]
        if workers:
            time.sleep(_WORKER_SETTLE_SECONDS)
        for spec, pid in workers:
            code = self.processes.exit_code(pid)
            if code is not None:
                raise self._exited(spec, code)

    def _ensure_admin_token(self, env: dict[str, str], gateway: str) -> None:
        """Keep the stored admin token while the gateway accepts it; mint one otherwise
        (first run, or a database that was dropped since)."""
        stored = self.state.admin_token()
        if stored is not None and _token_accepted(gateway, stored, self.env):
            return
        log_path = self.state.log_file(f"{REGISTRY}-create-token")
        with open(log_path, "ab") as log:
            result = subprocess.run(
                [
                    script("synthtasks-provider-registry"),
                    "create-token",
                    "--admin",
                    "--display-name",
                    "local stack admin (synthtasks stack up)",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                timeout=120,
                cwd=self.state.root,
            )
        try:
            secret = json.loads(result.stdout.decode().strip().splitlines()[-1])["secret"]
        except (ValueError, KeyError, IndexError):
            secret = None
        if result.returncode != 0 or not secret:
            raise SetupError(
                f"minting the admin token failed (exit {result.returncode}): "
                f"{last_log_line(log_path)} (log: {log_path})"
            )
        self.state.save_admin_token(secret)
        self.out.note(f"{self.indent}minted an admin token, stored in {self.state.token_file}")

    def _save(self, layout: Layout) -> None:
        info = self.state.stack_info()
        processes = info.get("processes", {})
        processes.update(
            {
                REGISTRY: {"address": layout.registry},
                TASK_STORE: {"address": layout.task_store},
                GATEWAY: {"address": layout.gateway},
                WEB: {"address": layout.web_url},
            }
        )
        info.update(
            {
                "gateway": layout.gateway,
                "web": layout.web_url,
                "registry": layout.registry,
                "task_store": layout.task_store,
                "workers": layout.workers,
                "processes": processes,
            }
        )
        self.state.save_stack_info(info)

    def record(self, name: str, address: str) -> None:
        """Remember an extra process's address (the demo's LLM server) for `status`."""
        info = self.state.stack_info()
        info.setdefault("processes", {})[name] = {"address": address}
        self.state.save_stack_info(info)

    # --- down ------------------------------------------------------------------------

    def down(self, *, grace: float = DEFAULT_GRACE, only: list[str] | None = None) -> list[tuple[str, int, bool]]:
        """Stop the front first (gateway, workers, extra processes), then the backends."""
        names = only if only is not None else self.processes.known()
        front = [n for n in names if n not in (REGISTRY, TASK_STORE)]
        back = [n for n in names if n in (REGISTRY, TASK_STORE)]
        stopped = self.processes.stop(front, grace=grace) + self.processes.stop(back, grace=grace)
        if only is None:
            self.state.stack_file.unlink(missing_ok=True)
        return stopped


def _token_accepted(gateway: str, token: str, env: Mapping[str, str]) -> bool:
    settings = ClientSettings.resolve(gateway=gateway, token=token, timeout=10.0, environ=env)
    with GatewayClient(settings) as client:
        try:
            client.call(client.tokens.ListTokens, token_service_pb2.ListTokensRequest(page_size=1))
        except grpc.RpcError as exc:
            return exc.code() not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    return True


# --- commands ----------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = leaf(commands, "stack", common, help="run every service as local processes")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = leaf(actions, "up", common, help="start the stack (no-op when it runs)")
    up.add_argument(
        "--workers", type=positive_int, help=f"worker processes (env {WORKERS_SETTING}, default {DEFAULT_WORKERS})"
    )
    up.add_argument(
        "--start-timeout",
        type=non_negative_float,
        default=DEFAULT_START_TIMEOUT,
        help="seconds to wait for health checks",
    )
    up.set_defaults(run=stack_up)

    down = leaf(actions, "down", common, help="stop every process of the stack")
    down.add_argument(
        "--grace", type=non_negative_float, default=DEFAULT_GRACE, help="seconds between SIGTERM and SIGKILL"
    )
    down.set_defaults(run=stack_down)

    status = leaf(actions, "status", common, help="each process, its pid and health (exit 1 unless all run)")
    status.set_defaults(run=stack_status)


def _stack(ctx: Context) -> LocalStack:
    return LocalStack(ctx.state, ctx.out)


def _print_status(ctx: Context, stack: LocalStack, rows: list[ProcessStatus]) -> None:
    ctx.out.result([row.__dict__ for row in rows], lambda console: stack.render_status(console, rows))


def stack_up(ctx: Context, args: argparse.Namespace) -> int:
    stack = _stack(ctx)
    started = stack.up(workers=args.workers, start_timeout=args.start_timeout)
    rows = stack.status()
    if started:
        ctx.out.note(f"synthtasks stack is up (state folder {stack.state.root})")
    else:
        ctx.out.note(f"synthtasks stack is already running (state folder {stack.state.root})")
    _print_status(ctx, stack, rows)
    info = stack.state.stack_info()
    ctx.out.note(f"Gateway: {info.get('gateway')}")
    ctx.out.note(f"Review web app: {info.get('web')} (sign in with the admin token below)")
    ctx.out.note(f"Admin token: {stack.state.token_file} (used automatically by `synthtasks` run from here)")
    ctx.out.note("Stop with: synthtasks stack down")
    return 0


def stack_down(ctx: Context, args: argparse.Namespace) -> int:
    stack = _stack(ctx)
    stopped = stack.down(grace=args.grace)
    if ctx.out.json_mode:
        ctx.out.result([{"name": n, "pid": p, "killed": k} for n, p, k in stopped], lambda console: None)
        return 0
    if not stopped:
        ctx.out.note(f"Nothing was running (state folder {stack.state.root}).")
    for name, pid, killed in stopped:
        how = "killed after the grace period" if killed else "stopped"
        ctx.out.note(f"{how} {_LABELS.get(name, name)} (pid {pid})")
    return 0


def stack_status(ctx: Context, args: argparse.Namespace) -> int:
    stack = _stack(ctx)
    rows = stack.status()
    _print_status(ctx, stack, rows)
    core = [r for r in rows if r.name != "llm"]
    healthy = all(r.running and r.health in ("SERVING", "running") for r in core)
    if not healthy and not ctx.out.json_mode:
        ctx.out.note("Not everything is running; start it with: synthtasks stack up")
    return 0 if healthy else 1
