"""Every API key the suite makes is registered here; at the end of the run no log line
written during the suite (this process's and every service process's) may contain one."""

from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

_registered: set[str] = set()


def register_secret(secret: str) -> str:
    _registered.add(secret)
    return secret


def new_key() -> str:
    """A fresh fake API key, registered so the run fails if it ever shows up in a log."""
    return register_secret("sk-test-" + uuid.uuid4().hex)


def registered_secrets() -> frozenset[str]:
    return frozenset(_registered)


class SuiteLog:
    """All log records of this process as JSON lines (extras included), plus a folder
    where tests put the logs of processes they start.

    A canary logged at start (in an extra, where a leaked key would most likely be) is
    the positive control of every absence check: a capture that lost it sees nothing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.canary = "canary-" + uuid.uuid4().hex
        self._buffer = io.StringIO()
        self._handler = logging.StreamHandler(self._buffer)
        self._handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))

    def start(self) -> None:
        root = logging.getLogger()
        root.addHandler(self._handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        logging.getLogger(__name__).info("capture check", extra={"canary": self.canary})

    def mark(self) -> int:
        """A position in this process's capture, for since()."""
        return len(self._buffer.getvalue())

    def since(self, mark: int) -> str:
        """What this process logged after mark()."""
        return self._buffer.getvalue()[mark:]

    def stop(self) -> None:
        logging.getLogger().removeHandler(self._handler)

    def text(self) -> str:
        files = (p.read_text(errors="replace") for p in sorted(self.folder.rglob("*.log")))
        return self._buffer.getvalue() + "\n".join(files)

    def leaked(self) -> list[str]:
        text = self.text()
        return sorted(secret[:6] + "…" for secret in registered_secrets() if secret in text)
