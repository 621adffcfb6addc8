"""The `synthtasks-worker` command: dramatiq CLI arguments, and one Prometheus endpoint
for all its worker processes."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.generator_worker.__main__ import dramatiq_arguments
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
