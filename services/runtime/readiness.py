"""Readiness apart from liveness, both on the gRPC health service.

The overall status (service name "") says the process is up: Kubernetes' liveness probe
asks it, and restarting a process whose database is down would not bring the database
back. `READINESS_SERVICE` says whether the service's dependencies answer (its database,
Redis): the readiness probe asks that name, so a replica that lost its database stops
getting calls until it reaches it again, without being restarted."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from grpc_health.v1 import health, health_pb2

log = logging.getLogger(__name__)

READINESS_SERVICE = "synthtasks.readiness"
CHECK_INTERVAL_SECONDS = 5.0


class ReadinessWatch:
    """Runs `check` (raises when a dependency does not answer) every `interval` seconds
    and reports the result under READINESS_SERVICE."""

    def __init__(
        self, servicer: health.HealthServicer, check: Callable[[], None], interval: float = CHECK_INTERVAL_SECONDS
    ) -> None:
        self._servicer = servicer
        self._check = check
        self._interval = interval
        self._stop = threading.Event()
        self._ready: bool | None = None
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)

    def start(self) -> None:
        self._probe()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._probe()

    def _probe(self) -> None:
        try:
            self._check()
            ready, reason = True, ""
        except Exception as error:  # noqa: BLE001 - any failure of a dependency means not ready
            ready, reason = False, type(error).__name__
        if ready != self._ready:
            log.log(
                logging.INFO if ready else logging.WARNING,
                "ready" if ready else "not ready: a dependency does not answer",
                extra={"error": reason},
            )
        self._ready = ready
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        self._servicer.set(READINESS_SERVICE, status)
