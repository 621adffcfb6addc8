"""Background processes of the local stack: started detached, one log file and one
pid file each, stopped with SIGTERM then SIGKILL.

A pid file holds the pid on its first line and the program on its second; a pid whose
process is gone, or now runs another program (pids are reused), counts as stale and
its file is removed. Each process leads its own session, so a Ctrl-C in the terminal
that ran `stack up` does not reach it. Stopping sends SIGTERM to the leader, and
SIGKILL to its whole group (dramatiq's worker processes included) after the grace period."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from synthtasks_cli.state import StateDir


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    command: list[str]
    env: dict[str, str] = field(repr=False)
    # Where its gRPC health service answers; None for processes without one.
    address: str | None = None
    # An HTTP URL answering 200 when it is ready (the web app), instead of gRPC health.
    health_url: str | None = None

    @property
    def program(self) -> str:
        """What identifies the process in /proc/PID/cmdline: the script, or the module of `-m`."""
        if "-m" in self.command[:2]:
            return self.command[self.command.index("-m") + 1]
        return Path(self.command[0]).name


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return True  # our own child, exited and now reaped
    except ChildProcessError:
        pass  # not our child: someone else reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _runs(pid: int, program: str) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc: trust the pid
    try:
        return program.encode() in cmdline.read_bytes()
    except OSError:
        return False


class Processes:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    def pid(self, name: str) -> int | None:
        """The pid of `name` if it is running; removes a stale pid file."""
        path = self.state.pid_file(name)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            pid, program = int(lines[0]), (lines[1] if len(lines) > 1 else "")
        except (OSError, ValueError, IndexError):
            return None
        if _is_zombie_or_gone(pid) or (program and not _runs(pid, program)):
            path.unlink(missing_ok=True)
            return None
        return pid

    def known(self) -> list[str]:
        """Names that have a pid file (running or stale)."""
        if not self.state.run.exists():
            return []
        return sorted(p.stem for p in self.state.run.glob("*.pid"))

    def start(self, spec: ProcessSpec) -> int:
        self.state.create()
        log_path = self.state.log_file(spec.name)
        with open(log_path, "ab") as log:
            stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            log.write(f"--- {stamp} starting {' '.join(spec.command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                spec.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**spec.env, "PYTHONUNBUFFERED": "1"},
                cwd=self.state.root,
                start_new_session=True,
            )
        self.state.pid_file(spec.name).write_text(f"{process.pid}\n{spec.program}\n", encoding="utf-8")
        return process.pid

    def exit_code(self, pid: int) -> int | None:
        """The exit status of a child started here, once it has exited; None while it runs."""
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None if not _is_zombie_or_gone(pid) else -1
        if reaped == 0:
            return None
        return os.waitstatus_to_exitcode(status)

    def stop(self, names: Iterable[str], *, grace: float) -> list[tuple[str, int, bool]]:
        """SIGTERM each process group, wait up to `grace` seconds, SIGKILL what is left.

        Returns (name, pid, killed) for every process that was running."""
        running = [(name, pid) for name in list(names) if (pid := self.pid(name)) is not None]
        for _, pid in running:
            # The leader only: it stops its own children its own way (dramatiq's parent
            # forwards the signal; a second SIGTERM from us would make them hard-exit).
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        left = dict(running)
        while left and time.monotonic() < deadline:
            left = {name: pid for name, pid in left.items() if not _is_zombie_or_gone(pid)}
            if left:
                time.sleep(0.1)
        for pid in left.values():
            _signal_group(pid, signal.SIGKILL)
        for pid in left.values():
            for _ in range(50):
                if _is_zombie_or_gone(pid):
                    break
                time.sleep(0.05)
        for name, _ in running:
            self.state.pid_file(name).unlink(missing_ok=True)
        return [(name, pid, name in left) for name, pid in running]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        _signal(pid, sig)


def last_log_line(path: Path, *, limit: int = 300) -> str:
    """The last meaningful line of a log, for one-line error messages."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 16384))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        text = _readable(line.strip())
        if text and not text.startswith("--- "):
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def _readable(line: str) -> str:
    """A JSON log record as `LEVEL message: exception`, other lines as they are."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    text = f"{record.get('level', '')} {record['message']}".strip()
    failure = record.get("exc_info") or record.get("error")
    if isinstance(failure, str) and failure.strip():
        text += ": " + failure.strip().splitlines()[-1]
    return text
