"""The `synthtasks-worker` command: dramatiq CLI arguments, one Prometheus endpoint for
all its worker processes, and probes that follow those processes (liveness.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.generator_worker import __main__ as worker_command
from services.generator_worker.__main__ import dramatiq_arguments
from services.generator_worker.liveness import HEARTBEAT_DIR_ENV, ProbeServer, children_problem
from tests.jobs_harness import Generation, log_dir_for, started_workers


def test_our_defaults_fill_in_what_the_command_line_leaves_out() -> None:
    assert dramatiq_arguments([], processes=1, threads=64, shutdown_grace_ms=100_000) == [
        "services.generator_worker.actors",
        "--processes",
        "1",
        "--threads",
        "64",
        "--worker-shutdown-timeout",
        "100000",
        "--queues",
        "generation",
        "--skip-logging",
    ]


def test_dramatiq_flags_given_on_the_command_line_win() -> None:
    args = dramatiq_arguments(
        ["-p", "3", "--threads=2", "--worker-shutdown-timeout=5000", "--verbose"],
        processes=1,
        threads=8,
        shutdown_grace_ms=100_000,
    )

    assert args[:5] == ["services.generator_worker.actors", "-p", "3", "--threads=2", "--worker-shutdown-timeout=5000"]
    assert "--processes" not in args and "--threads" not in args and "--worker-shutdown-timeout" not in args
    assert "--verbose" in args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_metrics_of_every_worker_process_are_served_by_the_command(generation: Generation, suite_log, request) -> None:
    port = _free_port()
    project = generation.new_project()
    generation.provider(project)
    with started_workers(
        generation.stack,
        log_dir_for(suite_log, request),
        1,
        SYNTHTASKS_WORKER_METRICS_PORT=str(port),
        SYNTHTASKS_WORKER_PROCESSES="2",
    ):
        job = generation.wait(generation.start(project, 40).name)
        assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            produced = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith('synthtasks_generation_texts_total{outcome="produced"}')
            )
            if produced >= 40 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert produced >= 40
    assert 'synthtasks_provider_requests_total{outcome="ok",provider_kind="openai"}' in text
    assert "synthtasks_rate_limiter_wait_seconds_bucket" in text


@pytest.mark.parametrize("flag", ["--processes", "-p"])
def test_flag_detection_accepts_both_spellings(flag: str) -> None:
    assert dramatiq_arguments([flag, "2"], processes=5, threads=8, shutdown_grace_ms=1000).count("5") == 0


def _probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for(port: int, path: str, status: int, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        answered, body = _probe(port, path)
        if answered == status:
            return body
        assert time.monotonic() < deadline, f"{path} still answers {answered} {body!r}, not {status}"
        time.sleep(0.2)


def test_the_probes_follow_the_worker_processes_not_the_parent(generation: Generation, suite_log, request, tmp_path):
    """A frozen worker process (SIGSTOP: its event loop stops, as a wedged one's would)
    turns both probes unhealthy while the parent still answers; thawed, they recover."""
    port = _free_port()
    heartbeats = tmp_path / "heartbeats"
    heartbeats.mkdir()
    with started_workers(
        generation.stack,
        log_dir_for(suite_log, request),
        1,
        SYNTHTASKS_WORKER_METRICS_PORT=str(port),
        SYNTHTASKS_WORKER_PROCESSES="2",
        SYNTHTASKS_WORKER_HEARTBEAT_DIR=str(heartbeats),
        SYNTHTASKS_WORKER_LIVENESS_STALE_SECONDS="2",
    ):
        _wait_for(port, "/healthz", 200)
        _wait_for(port, "/readyz", 200)
        children = sorted(int(path.name) for path in heartbeats.iterdir())
        assert len(children) == 2, "one heartbeat per worker process"
        frozen = children[0]
        os.kill(frozen, signal.SIGSTOP)
        try:
            assert str(frozen) in _wait_for(port, "/healthz", 503)
            assert str(frozen) in _wait_for(port, "/readyz", 503)
            assert _probe(port, "/metrics")[0] == 200, "the parent itself still answers"
        finally:
            os.kill(frozen, signal.SIGCONT)
        _wait_for(port, "/healthz", 200)
        _wait_for(port, "/readyz", 200)
    assert not list(heartbeats.iterdir()), "each worker process removes its heartbeat when it stops"


def test_readiness_needs_redis_and_liveness_does_not(infra, tmp_path) -> None:
    (tmp_path / "123").touch()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"redis://127.0.0.1:{unused.getsockname()[1]}/0"
        for redis_url, ready in ((infra.redis_url, 200), (nowhere, 503)):
            probes = ProbeServer(
                host="127.0.0.1",
                port=0,
                registry=CollectorRegistry(),
                heartbeat_dir=tmp_path,
                processes=1,
                stale_seconds=60,
                redis_url=redis_url,
            )
            probes.start()
            try:
                assert _probe(probes.port, "/healthz")[0] == 200
                status, body = _probe(probes.port, "/readyz")
                assert status == ready, body
            finally:
                probes.stop()


def test_liveness_counts_the_worker_processes_and_their_heartbeats_age(tmp_path) -> None:
    assert children_problem(tmp_path, 1, 30) == "0 of 1 worker processes running"
    (tmp_path / "101").touch()
    assert children_problem(tmp_path, 1, 30) is None
    old = time.time() - 60
    os.utime(tmp_path / "101", (old, old))
    assert children_problem(tmp_path, 1, 30) == "worker processes 101 gave no sign of life for over 30 s"


def test_the_command_and_the_workers_agree_on_where_heartbeats_go() -> None:
    assert worker_command._HEARTBEAT_DIR_ENV == HEARTBEAT_DIR_ENV


_BOOT_A_WORKER = """
import dramatiq.worker
import services.generator_worker.actors as actors
worker = dramatiq.worker.Worker(actors.broker, worker_threads=1)
for middleware in actors.broker.middleware:
    if type(middleware).__name__ == "_ProcessSetup":
        middleware.before_worker_boot(actors.broker, worker)
print(dramatiq.worker.WORKER_TIMEOUT, worker.worker_timeout)
"""


@pytest.mark.parametrize("poll_interval_ms", ["25", "40"])
def test_an_idle_worker_polls_the_queue_as_often_as_the_setting_says(infra, poll_interval_ms: str) -> None:
    """dramatiq reads its own poll interval once, when dramatiq.worker is imported, which
    the actors module does before any setting could be applied: its default of a second
    would then delay every job's first call by up to that much."""
    env = {
        **os.environ,
        "SYNTHTASKS_REDIS_URL": infra.redis_url,
        "SYNTHTASKS_INTERNAL_TOKEN": "poll-interval-test-token-0123456789",
        "SYNTHTASKS_WORKER_POLL_INTERVAL_MS": poll_interval_ms,
    }
    env.pop("dramatiq_worker_timeout", None)
    booted = subprocess.run(
        [sys.executable, "-c", _BOOT_A_WORKER], env=env, capture_output=True, text=True, timeout=60, check=True
    )

    dramatiq_default, ours = booted.stdout.split()
    assert dramatiq_default == "1000", "the positive control: dramatiq's own default is in force"
    assert ours == poll_interval_ms
