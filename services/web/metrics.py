"""Prometheus metrics of the web app (served on SYNTHTASKS_WEB_METRICS_PORT; the names
are documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_REQUESTS = Counter(
    "synthtasks_web_requests_total",
    "HTTP requests answered by the web app, by page (its handler) and status code.",
    ["page", "status"],
)
WEB_LIVE_STREAMS = Gauge(
    "synthtasks_web_live_streams",
    "Live job views (server-sent event streams, each holding a gateway stream) open now.",
)


class RequestMetrics:
    """Counts each answered request under its handler's name (never its URL: URLs carry
    ids, which would make a label per text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            endpoint = scope.get("endpoint")
            WEB_REQUESTS.labels(getattr(endpoint, "__name__", "unknown"), str(status)).inc()
