"""The build ticker of `make demo`'s llama-cpp-python install reads real progress from
the build's own output: ninja's [n/total] steps, make's percentages, pip's steps."""

from __future__ import annotations

import sys

from synthtasks_cli.install_local_llm import build_step, run_with_ticker


def test_ninja_steps_become_a_percentage():
    line = "  [35/140] Building CXX object vendor/llama.cpp/ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu.cpp.o\n"
    assert build_step(line) == "compiling: step 35 of 140 (25 %)"


def test_make_percentages_are_shown_as_they_are():
    assert build_step("[ 42%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o") == "compiling: 42 %"


def test_pip_steps_are_shown_and_other_lines_are_not():
    assert build_step("  Building wheel for llama-cpp-python (pyproject.toml): started") == (
        "Building wheel for llama-cpp-python (pyproject.toml): started"
    )
    assert build_step("-- The C compiler identification is GNU 12.2.0") is None


def test_the_ticker_returns_the_exit_code_and_the_last_lines_and_logs_everything(tmp_path):
    script = "print('[1/2] a'); print('[2/2] b'); raise SystemExit(3)"
    log = tmp_path / "build.log"
    code, tail = run_with_ticker([sys.executable, "-c", script], env={}, log_path=log, what="building")
    assert code == 3
    assert tail == ["[1/2] a", "[2/2] b"]
    assert log.read_text() == "[1/2] a\n[2/2] b\n"
