"""`synthtasks-worker`: the dramatiq CLI on the generation actors, plus JSON logs and a
Prometheus endpoint for all its processes.

    synthtasks-worker [--processes P] [--threads T] [any other dramatiq flag]

P and T default to SYNTHTASKS_WORKER_PROCESSES (1) and SYNTHTASKS_WORKER_THREADS (64),
dramatiq's shutdown timeout to SYNTHTASKS_WORKER_SHUTDOWN_GRACE_SECONDS (100 s); the
queue is always the generation queue. Metrics of every worker process are collected
(prometheus_client's multiprocess mode) and served by this, the parent, process on
SYNTHTASKS_WORKER_METRICS_PORT (0 disables)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


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
    # Read by dramatiq.worker at import: how long idle consumers sleep between polls.
    os.environ.setdefault("dramatiq_worker_timeout", str(settings.poll_interval_ms))
    own_metrics_dir = None
    if settings.metrics_port and _MULTIPROC_ENV not in os.environ:
        # Must be set before prometheus_client is first imported, here and in the children.
        own_metrics_dir = tempfile.mkdtemp(prefix="synthtasks-worker-metrics-")
        os.environ[_MULTIPROC_ENV] = own_metrics_dir
    try:
        if settings.metrics_port:
            from prometheus_client import CollectorRegistry, multiprocess, start_http_server

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)

        from dramatiq.cli import main as dramatiq_main
        from dramatiq.cli import make_argument_parser

        args = dramatiq_arguments(
            list(sys.argv[1:] if argv is None else argv),
            processes=settings.processes,
            threads=settings.threads,
            shutdown_grace_ms=int(settings.shutdown_grace_seconds * 1000),
        )
        code = dramatiq_main(make_argument_parser().parse_args(args))
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
