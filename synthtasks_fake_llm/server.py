"""Serving the fake provider: on a loop of its own in a thread (in-process use), or
on the caller's loop (the subprocess entry point, __main__)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from synthtasks_fake_llm.config import FakeConfig, FakeStats
from synthtasks_fake_llm.provider import FakeProvider

HOST = "127.0.0.1"
# Long enough for in-flight replies to finish, short enough that a hanging fault cannot stall stop().
_SHUTDOWN_GRACE_SECONDS = 0.5
_T = TypeVar("_T")


async def start_site(provider: FakeProvider, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        provider.make_app(),
        access_log=None,
        handler_cancellation=True,  # a client that times out must not leave its handler hanging
        shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
    )
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=1024).start()
    return runner, runner.addresses[0][1]


class FakeOpenAIServer:
    """The fake provider on its own event loop in a daemon thread, bound to 127.0.0.1 only."""

    def __init__(self, config: FakeConfig | None = None, *, port: int = 0) -> None:
        self._provider = FakeProvider(config or FakeConfig())
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Root URL; what AzureOpenAI takes as azure_endpoint."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What OpenAI/AsyncOpenAI take as base_url."""
        return self.base_url + "/v1"

    @property
    def config(self) -> FakeConfig:
        return self._provider.config

    def start(self) -> FakeOpenAIServer:
        if self._loop is not None:
            raise RuntimeError("FakeOpenAIServer is already started")
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-openai-server", daemon=True)
        self._thread.start()
        self._loop = loop
        try:
            self._runner, self._port = self._run(start_site(self._provider, self._requested_port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop
        try:
            if self._runner is not None:
                self._run(self._runner.cleanup())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()
            self._loop = self._thread = self._runner = self._port = None

    def configure(self, **fields: Any) -> FakeConfig:
        """Changes config fields (e.g. ``rate_429=1.0``) for the following requests; returns the new config."""
        return self._on_loop(lambda: self._provider.configure(**fields))

    def reset_stats(self) -> None:
        """Zeroes the stats, empties the rpm window and reseeds the fault draws."""
        self._on_loop(self._provider.reset)

    def stats(self) -> FakeStats:
        return self._on_loop(self._provider.snapshot)

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        """Touches provider state on the server's loop so handlers never see a half-applied change."""
        if self._loop is None:
            return fn()

        async def call() -> _T:
            return fn()

        return self._run(call())
