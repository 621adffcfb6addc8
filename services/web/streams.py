"""The bound on live job views (server-sent event streams) per session.

Each open view holds a gateway stream, and the gateway bounds streams per caller, so
one browser with many tabs must not use them all up. Counted in this process; with
several web replicas the bound is per replica."""

from __future__ import annotations

import threading
from collections import Counter

from services.web.metrics import WEB_LIVE_STREAMS


class StreamLease:
    """One open stream; `release` may be called any number of times."""

    def __init__(self, counter: StreamCounter, sid: str) -> None:
        self._counter = counter
        self._sid = sid
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._counter._release(self._sid)


class StreamCounter:
    def __init__(self, per_session: int) -> None:
        self._per_session = per_session
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, sid: str) -> StreamLease | None:
        with self._lock:
            if self._open[sid] >= self._per_session:
                return None
            self._open[sid] += 1
        WEB_LIVE_STREAMS.inc()
        return StreamLease(self, sid)

    def _release(self, sid: str) -> None:
        with self._lock:
            self._open[sid] -= 1
            if self._open[sid] <= 0:
                del self._open[sid]
        WEB_LIVE_STREAMS.dec()

    def open_streams(self) -> int:
        with self._lock:
            return sum(self._open.values())
