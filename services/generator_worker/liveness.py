"""Health of a `synthtasks-worker`, as its probes see it: the children's, not the parent's.

The dramatiq parent only forks the worker processes and relays their logs; it stays
responsive whatever its children do. A child whose event loop is stuck (a blocking call
on it, a deadlock) or that is frozen (SIGSTOP, a hung syscall) takes no more work, yet
the parent would still answer. So each child proves it is alive: every second its event
loop, which runs every provider call of the process, touches a file of its own in a
directory the parent made (`LoopHeartbeat`). The parent serves, next to `/metrics`:

- `/healthz` (liveness): 200 while every child's file is younger than
  `SYNTHTASKS_WORKER_LIVENESS_STALE_SECONDS`, 503 (naming the stale children) otherwise,
  also while the children boot; a child that exits makes dramatiq stop the whole worker,
  which the orchestrator restarts anyway;
- `/readyz` (readiness): the same, and Redis answers a PING (the worker takes nothing
  from the queue without it).

Why files: the children are forked by dramatiq's CLI, which gives us no channel to them;
a file's modification time is a heartbeat any process can read, costs one syscall a
second, and lives in the /tmp the containers already have."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import logging
import os
import threading
import time
from pathlib import Path

import dramatiq
import redis
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# Set by the parent for its children (like PROMETHEUS_MULTIPROC_DIR): where they beat.
HEARTBEAT_DIR_ENV = "SYNTHTASKS_WORKER_HEARTBEAT_DIR"
BEAT_INTERVAL_SECONDS = 1.0
_REDIS_TIMEOUT_SECONDS = 2.0


class LoopHeartbeat(Middleware):
    """A child's heartbeat, written by its event loop (so a stuck loop stops it): the file
    `<dir>/<pid>`, touched every BEAT_INTERVAL_SECONDS, removed when the process stops."""

    def __init__(self, directory: str | None) -> None:
        self._directory = directory
        self._path: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._removed = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not self._directory:
            return  # run by dramatiq's own CLI, or with metrics (and probes) off
        self._path = Path(self._directory) / str(os.getpid())
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the loop heartbeat needs dramatiq's AsyncIO middleware first")
        self._loop = loop_thread.loop
        self._loop.call_soon_threadsafe(self._beat)

    def _beat(self) -> None:
        """On the loop, which alone touches and removes the file: once stopping, no touch
        can follow the removal."""
        assert self._path is not None and self._loop is not None
        if self._stopping.is_set():
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._removed.set()
            return
        try:
            self._path.touch()
        except OSError as error:
            # The probe will say so; nothing else in the process depends on it.
            log.warning("could not write the liveness heartbeat", extra={"error": str(error)})
        self._loop.call_later(BEAT_INTERVAL_SECONDS, self._beat)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Before _DaemonAsyncIO stops the loop: dramatiq runs "after" hooks in reverse order.
        if self._loop is None or self._path is None:
            return
        self._stopping.set()
        self._loop.call_soon_threadsafe(self._beat)
        if not self._removed.wait(timeout=BEAT_INTERVAL_SECONDS * 2):
            # The loop is stuck: remove the file from here.
            with contextlib.suppress(OSError):
                self._path.unlink()


def children_problem(directory: Path, expected: int, stale_seconds: float) -> str | None:
    """None when `expected` children beat within `stale_seconds`; otherwise what is wrong."""
    now = time.time()
    ages: dict[str, float] = {}
    for path in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):  # a child that just stopped
            ages[path.name] = now - path.stat().st_mtime
    stale = sorted(pid for pid, age in ages.items() if age > stale_seconds)
    if stale:
        return f"worker processes {', '.join(stale)} gave no sign of life for over {stale_seconds:g} s"
    if len(ages) < expected:
        return f"{len(ages)} of {expected} worker processes running"
    return None


class ProbeServer:
    """The parent's HTTP endpoint: /metrics of every child, /healthz and /readyz."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry,
        heartbeat_dir: Path,
        processes: int,
        stale_seconds: float,
        redis_url: str,
    ) -> None:
        self._registry = registry
        self._heartbeat_dir = heartbeat_dir
        self._processes = processes
        self._stale_seconds = stale_seconds
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS
        )
        probes = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = probes.answer(self.path.split("?", 1)[0])
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Probes every few seconds would drown the worker's log."""

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="probe-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._redis.close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path not in ("/healthz", "/readyz"):
            return 404, "text/plain", b"not found\n"
        problem = children_problem(self._heartbeat_dir, self._processes, self._stale_seconds)
        if problem is None and path == "/readyz":
            problem = self._redis_problem()
        if problem is not None:
            return 503, "text/plain", f"{problem}\n".encode()
        return 200, "text/plain", b"ok\n"

    def _redis_problem(self) -> str | None:
        try:
            self._redis.ping()
        except redis.RedisError as error:
            return f"Redis does not answer: {type(error).__name__}"
        return None
