"""The state folder, the gateway settings it feeds, and the background processes of
`synthtasks stack`: secrets stay private and stable, pid files never lie."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from synthtasks_cli.errors import SetupError
from synthtasks_cli.gateway import DEFAULT_GATEWAY, ClientSettings
from synthtasks_cli.preflight import check_port_free, check_postgres, check_redis, postgres_target
from synthtasks_cli.processes import Processes, ProcessSpec, last_log_line
from synthtasks_cli.stack import Layout
from synthtasks_cli.state import INTERNAL_TOKEN, MASTER_KEYS, WEB_SESSION_KEYS, StateDir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_generated_once_private_and_reused(tmp_path):
    state = StateDir(tmp_path / "state")
    first = state.service_secrets()
    assert set(first) == {INTERNAL_TOKEN, MASTER_KEYS, WEB_SESSION_KEYS}
    Fernet(first[MASTER_KEYS].encode())  # a usable Fernet key
    Fernet(first[WEB_SESSION_KEYS].encode())
    assert mode(state.secrets_file) == 0o600
    assert StateDir(tmp_path / "state").service_secrets() == first


def test_a_state_folder_from_before_the_web_app_gets_a_session_key_and_keeps_the_rest(tmp_path):
    state = StateDir(tmp_path / "state")
    state.create()
    state.secrets_file.write_text(f"{INTERNAL_TOKEN}=kept-token\n{MASTER_KEYS}=kept-key\n")
    found = state.service_secrets()
    assert found[INTERNAL_TOKEN] == "kept-token" and found[MASTER_KEYS] == "kept-key"
    Fernet(found[WEB_SESSION_KEYS].encode())
    assert mode(state.secrets_file) == 0o600
    assert StateDir(tmp_path / "state").service_secrets() == found


def test_the_admin_token_file_is_private(tmp_path):
    state = StateDir(tmp_path)
    state.save_admin_token("st_secret")
    assert state.admin_token() == "st_secret"
    assert mode(state.token_file) == 0o600


def test_client_settings_prefer_flags_then_environment_then_the_state_folder(tmp_path):
    state = StateDir(tmp_path)
    state.create()
    state.save_admin_token("from-state")
    state.save_stack_info({"gateway": "127.0.0.1:6000"})
    env = {"SYNTHTASKS_STATE_DIR": str(tmp_path)}

    from_state = ClientSettings.resolve(environ=env)
    assert (from_state.address, from_state.token) == ("127.0.0.1:6000", "from-state")

    env.update(SYNTHTASKS_GATEWAY_ADDRESS="127.0.0.1:7000", SYNTHTASKS_TOKEN="from-env")
    from_env = ClientSettings.resolve(environ=env)
    assert (from_env.address, from_env.token) == ("127.0.0.1:7000", "from-env")

    from_flags = ClientSettings.resolve(gateway="h:1", token="from-flag", environ=env)
    assert (from_flags.address, from_flags.token) == ("h:1", "from-flag")
    assert from_flags.metadata() == (("authorization", "Bearer from-flag"),)


def test_without_any_setting_the_default_gateway_and_no_token_are_used(tmp_path):
    settings = ClientSettings.resolve(environ={"SYNTHTASKS_STATE_DIR": str(tmp_path / "empty")})
    assert (settings.address, settings.token, settings.metadata()) == (DEFAULT_GATEWAY, None, ())


def test_the_token_never_shows_in_the_settings_repr(tmp_path):
    settings = ClientSettings.resolve(token="st_very_secret", environ={"SYNTHTASKS_STATE_DIR": str(tmp_path)})
    assert "st_very_secret" not in repr(settings)


def test_services_are_linked_to_where_the_others_listen_unless_told_otherwise():
    layout = Layout.from_env(
        {
            "SYNTHTASKS_REGISTRY_LISTEN_ADDRESS": "127.0.0.1:6052",
            "SYNTHTASKS_TASK_STORE_LISTEN_ADDRESS": "127.0.0.1:6053",
        }
    )
    env = layout.service_env(
        {"SYNTHTASKS_WORKER_TASK_STORE_ADDRESS": "elsewhere:1"}, {INTERNAL_TOKEN: "t", MASTER_KEYS: "k"}
    )
    assert env["SYNTHTASKS_GATEWAY_REGISTRY_ADDRESS"] == env["SYNTHTASKS_WORKER_REGISTRY_ADDRESS"] == "127.0.0.1:6052"
    assert env["SYNTHTASKS_GATEWAY_TASK_STORE_ADDRESS"] == "127.0.0.1:6053"
    assert env["SYNTHTASKS_WORKER_TASK_STORE_ADDRESS"] == "elsewhere:1"
    assert (env[INTERNAL_TOKEN], env[MASTER_KEYS]) == ("t", "k")


def test_secrets_from_the_environment_win_over_the_state_folder():
    env = Layout.from_env({}).service_env({INTERNAL_TOKEN: "mine"}, {INTERNAL_TOKEN: "generated", MASTER_KEYS: "k"})
    assert env[INTERNAL_TOKEN] == "mine"


def test_each_worker_gets_its_own_metrics_port_and_zero_keeps_them_off():
    assert [Layout.from_env({}, workers=3).worker_metrics_port(i) for i in (1, 2, 3)] == [9104, 9105, 9106]
    assert Layout.from_env({"SYNTHTASKS_WORKER_METRICS_PORT": "0"}, workers=2).worker_metrics_port(2) == 0


def test_a_non_numeric_port_setting_is_a_setup_error():
    with pytest.raises(SetupError, match="not a number"):
        Layout.from_env({"SYNTHTASKS_GATEWAY_METRICS_PORT": "abc"})


def sleeper(name: str, seconds: int = 60) -> ProcessSpec:
    return ProcessSpec(
        name, [sys.executable, "-c", f"import time; print('up', flush=True); time.sleep({seconds})"], dict(os.environ)
    )


def test_a_started_process_has_a_pid_file_and_a_log_and_stops_on_sigterm(tmp_path):
    processes = Processes(StateDir(tmp_path))
    pid = processes.start(sleeper("sleeper"))
    assert processes.pid("sleeper") == pid
    assert processes.known() == ["sleeper"]
    stopped = processes.stop(["sleeper"], grace=5)
    assert stopped == [("sleeper", pid, False)]
    assert processes.pid("sleeper") is None
    assert not StateDir(tmp_path).pid_file("sleeper").exists()
    assert "starting" in StateDir(tmp_path).log_file("sleeper").read_text()


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    processes = Processes(StateDir(tmp_path))
    stubborn = ProcessSpec(
        "stubborn",
        [
            sys.executable,
            "-c",
            (
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                " print('re' + 'ady', flush=True); time.sleep(60)"
            ),
        ],
        dict(os.environ),
    )
    pid = processes.start(stubborn)
    deadline = time.monotonic() + 10
    # The log's first line repeats the command, so look for the line the process printed.
    while (
        "ready" not in StateDir(tmp_path).log_file("stubborn").read_text().splitlines() and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert processes.stop(["stubborn"], grace=0.5) == [("stubborn", pid, True)]
    assert processes.pid("stubborn") is None


def test_a_stale_pid_file_is_removed(tmp_path):
    state = StateDir(tmp_path)
    state.create()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state.pid_file("ghost").write_text(f"{gone.pid}\nsynthtasks-gateway\n")
    assert Processes(state).pid("ghost") is None
    assert not state.pid_file("ghost").exists()


def test_a_pid_reused_by_another_program_does_not_count_as_running(tmp_path):
    state = StateDir(tmp_path)
    state.create()
    # Our own pid is alive, but it is not the program the pid file names.
    state.pid_file("gateway").write_text(f"{os.getpid()}\nsynthtasks-gateway-that-is-not-pytest\n")
    assert Processes(state).pid("gateway") is None


def test_the_last_log_line_of_a_json_log_is_made_readable(tmp_path):
    log = tmp_path / "x.log"
    log.write_text(
        "--- starting\n"
        '{"level": "ERROR", "message": "unexpected error", "exc_info": "Traceback...\\nKeyError: \'x\'"}\n'
    )
    assert last_log_line(log) == "ERROR unexpected error: KeyError: 'x'"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_postgres_is_one_line_naming_the_setting_and_the_fix():
    port = closed_port()
    with pytest.raises(SetupError) as failure:
        check_postgres(f"postgresql://postgres@127.0.0.1:{port}/x", "SYNTHTASKS_REGISTRY_DATABASE_URL")
    message = str(failure.value)
    assert message.startswith(f"Postgres is not reachable at 127.0.0.1:{port} (SYNTHTASKS_REGISTRY_DATABASE_URL); ")
    assert "\n" not in message


def test_a_wrong_postgres_port_names_the_port_that_answers_and_the_url(infra):
    running = postgres_target(infra.postgres_url)[1]
    port = closed_port()
    url = f"postgresql://postgres:s3cret@127.0.0.1:{port}/x"
    with pytest.raises(SetupError) as failure:
        check_postgres(url, "SYNTHTASKS_TASK_STORE_DATABASE_URL")
    message = str(failure.value)
    assert f"a server is running on 127.0.0.1:{running}: fix the port in SYNTHTASKS_TASK_STORE_DATABASE_URL" in message
    assert f"postgresql://postgres:***@127.0.0.1:{port}/x" in message
    assert "s3cret" not in message


def test_an_unreachable_redis_is_one_line_naming_the_setting_and_the_fix():
    port = closed_port()
    with pytest.raises(SetupError) as failure:
        check_redis(f"redis://127.0.0.1:{port}/0", "SYNTHTASKS_REDIS_URL")
    assert str(failure.value).startswith(f"Redis is not reachable at 127.0.0.1:{port} (SYNTHTASKS_REDIS_URL); ")


def test_the_local_postgres_and_redis_pass_the_checks(infra):
    check_postgres(infra.postgres_url, "SYNTHTASKS_REGISTRY_DATABASE_URL")
    check_redis(infra.redis_url, "SYNTHTASKS_REDIS_URL")


def test_a_taken_port_names_the_setting_to_change():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            SetupError, match=rf"port {port} on 127.0.0.1 \(SYNTHTASKS_GATEWAY_LISTEN_ADDRESS\) is in use"
        ):
            check_port_free("127.0.0.1", port, "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS", example="127.0.0.1:1")
    check_port_free("127.0.0.1", port, "SYNTHTASKS_GATEWAY_LISTEN_ADDRESS", example="127.0.0.1:1")
