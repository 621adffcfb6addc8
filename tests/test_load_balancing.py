"""Internal clients spread their calls over every replica a service address resolves to
(round-robin in services/runtime/channels.py), shown with two real task-store processes
behind one address list, each counting the calls it answered in its own metrics."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import generation_service_pb2_grpc as gen_grpc

from services.runtime.channels import internal_channel, raw_channel
from services.runtime.config import CommonSettings

METHOD = "/synthtasks.v1.GenerationService/ListGenerationJobs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answered(metrics_port: int) -> float:
    """ListGenerationJobs calls this replica answered, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    pattern = rf'synthtasks_grpc_requests_total\{{[^}}]*method="{re.escape(METHOD)}"[^}}]*\}} ([0-9.e+]+)'
    return sum(float(value) for value in re.findall(pattern, text))


def _wait_serving(port: int, settings: CommonSettings, replica: subprocess.Popen, deadline: float) -> None:
    channel = raw_channel(f"127.0.0.1:{port}", settings)
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        while True:
            assert replica.poll() is None, f"the replica exited with {replica.returncode}"
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "the replica did not start"
            time.sleep(0.1)
    finally:
        channel.close()


@pytest.fixture
def two_replicas(make_database, tmp_path) -> Iterator[tuple[CommonSettings, list[tuple[int, int]]]]:
    """Two task-store processes on one database: [(grpc port, metrics port)] each."""
    token = secrets.token_urlsafe(24)
    database = make_database("balancing")
    ports = [(_free_port(), _free_port()) for _ in range(2)]
    replicas = []
    for number, (port, metrics_port) in enumerate(ports):
        env = {
            **os.environ,
            "SYNTHTASKS_INTERNAL_TOKEN": token,
            "SYNTHTASKS_TASK_STORE_DATABASE_URL": database,
            "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "SYNTHTASKS_TASK_STORE_METRICS_PORT": str(metrics_port),
        }
        log = open(tmp_path / f"replica-{number}.log", "wb")  # noqa: SIM115 - closed with the process
        replicas.append(
            (
                subprocess.Popen(
                    [sys.executable, "-m", "services.task_store", "serve"], env=env, stdout=log, stderr=log
                ),
                log,
            )
        )
    settings = CommonSettings(SYNTHTASKS_INTERNAL_TOKEN=token)
    try:
        deadline = time.monotonic() + 60
        for (port, _), (replica, _) in zip(ports, replicas, strict=True):
            _wait_serving(port, settings, replica, deadline)
        yield settings, ports
    finally:
        for replica, log in replicas:
            replica.terminate()
            replica.wait(timeout=30)
            log.close()


def test_calls_through_one_address_list_reach_both_task_store_replicas(two_replicas):
    settings, ports = two_replicas
    before = [_answered(metrics_port) for _, metrics_port in ports]
    addresses = ",".join(f"127.0.0.1:{port}" for port, _ in ports)
    channel = internal_channel(f"ipv4:{addresses}", settings)
    stub = gen_grpc.GenerationServiceStub(channel)
    try:
        for _ in range(20):
            stub.ListGenerationJobs(gen_pb.ListGenerationJobsRequest(parent="projects/balancing"), timeout=10)
    finally:
        channel.close()
    answered = [_answered(metrics_port) - was for (_, metrics_port), was in zip(ports, before, strict=True)]
    assert sum(answered) == 20
    # Round-robin: each replica answered about half; a client pinned to one would leave
    # the other at 0.
    assert min(answered) >= 5, answered
