"""`synthtasks-worker`: the dramatiq CLI on the generation actors, plus JSON logs and a
Prometheus endpoint for all its processes.

    synthtasks-worker [--processes P] [--threads T] [any other dramatiq flag]

P and T default to SYNTHTASKS_WORKER_PROCESSES (1) and SYNTHTASKS_WORKER_THREADS (16),
dramatiq's shutdown timeout to SYNTHTASKS_WORKER_SHUTDOWN_GRACE_SECONDS (100 s); the
queue is always the generation queue. Metrics of every worker process are collected
(prometheus_client's multiprocess mode) and served by this, the parent, process on
SYNTHTASKS_WORKER_METRICS_PORT (0 disables), with the probes /healthz and /readyz, which
reflect the worker processes' own heartbeats (liveness.py)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# liveness.HEARTBEAT_DIR_ENV; that module imports prometheus_client, which must wait.
_HEARTBEAT_DIR_ENV = "SYNTHTASKS_WORKER_HEARTBEAT_DIR"


def _has_flag(args: list[str], *names: str) -> bool:
    return any(arg == name or arg.startswith(name + "=") for arg in args for name in names)


def dramatiq_arguments(args: list[str], *, processes: int, threads: int, shutdown_grace_ms: int) -> list[str]:
    """The dramatiq CLI arguments for our actors, with our defaults where `args` sets none."""
    out = ["services.generator_worker.actors", *args]
    if not _has_flag(args, "--processes", "-p"):
        out += ["--processes", str(processes)]
    if not _has_flag(args, "--threads", "-t"):
        out += ["--threads", str(threads)]
    if not _has_flag(args, "--worker-shutdown-timeout"):
        out += ["--worker-shutdown-timeout", str(shutdown_grace_ms)]
    if not _has_flag(args, "--queues", "-Q"):
        out += ["--queues", "generation"]
    if not _has_flag(args, "--skip-logging"):
        out.append("--skip-logging")  # JSON logging is configured in each process instead
    return out


def main(argv: list[str] | None = None) -> None:
    from services.generator_worker.config import Settings
    from services.runtime.json_logging import configure_logging

    settings = Settings()
    configure_logging("generator-worker", settings.log_level)
    own_dirs: list[str] = []
    if settings.metrics_port:
        # Both must be set before the children fork (and prometheus_client is imported).
        for variable, prefix in ((_MULTIPROC_ENV, "metrics"), (_HEARTBEAT_DIR_ENV, "heartbeats")):
            if variable not in os.environ:
                os.environ[variable] = tempfile.mkdtemp(prefix=f"synthtasks-worker-{prefix}-")
                own_dirs.append(os.environ[variable])
    probes = None
    try:
        from dramatiq.cli import main as dramatiq_main
        from dramatiq.cli import make_argument_parser

        args = make_argument_parser().parse_args(
            dramatiq_arguments(
                list(sys.argv[1:] if argv is None else argv),
                processes=settings.processes,
                threads=settings.threads,
                shutdown_grace_ms=int(settings.shutdown_grace_seconds * 1000),
            )
        )
        if settings.metrics_port:
            from prometheus_client import CollectorRegistry, multiprocess

            from services.generator_worker.liveness import ProbeServer

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            probes = ProbeServer(
                host=settings.metrics_host,
                port=settings.metrics_port,
                registry=registry,
                heartbeat_dir=Path(os.environ[_HEARTBEAT_DIR_ENV]),
                processes=args.processes,
                stale_seconds=settings.liveness_stale_seconds,
                redis_url=settings.redis_url,
            )
            probes.start()
        code = dramatiq_main(args)
    finally:
        if probes is not None:
            probes.stop()
        for directory in own_dirs:
            shutil.rmtree(directory, ignore_errors=True)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
