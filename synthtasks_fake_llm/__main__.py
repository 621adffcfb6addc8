"""`python -m synthtasks_fake_llm`: the fake provider as a process of its own (benchmarks,
the demo's --fake-llm), so that it does not share the GIL with the measured code.

Prints `LISTENING http://127.0.0.1:PORT` and serves until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal

from synthtasks_fake_llm.config import FAULT_FIELDS, FakeConfig
from synthtasks_fake_llm.provider import FakeProvider
from synthtasks_fake_llm.server import HOST, start_site


def _parse_args(argv: list[str] | None) -> tuple[FakeConfig, int]:
    parser = argparse.ArgumentParser(
        prog="python -m synthtasks_fake_llm",
        description="OpenAI-compatible fake provider; other settings via POST /_control/config.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--key", action="append", help="accepted API key, repeatable; none means no auth")
    parser.add_argument("--model", action="append", help="known model, repeatable (default gpt-4o-mini)")
    parser.add_argument("--deployment", action="append", metavar="NAME=MODEL", help="Azure deployment, repeatable")
    for name in ("latency_ms", "latency_jitter_ms", "retry_after_seconds", "hang_seconds", *FAULT_FIELDS):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=float)
    for name in ("rpm_limit", "distinct_replies", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int)
    parser.add_argument("--no-honor-n", dest="honor_n", action="store_false", default=None)
    args = parser.parse_args(argv)
    field_names = {f.name for f in dataclasses.fields(FakeConfig)}
    fields = {name: value for name, value in vars(args).items() if name in field_names and value is not None}
    if args.key:
        fields["api_keys"] = set(args.key)
    if args.model:
        fields["models"] = set(args.model)
    if args.deployment:
        fields["deployments"] = dict(item.split("=", 1) for item in args.deployment)
    return FakeConfig(**fields), args.port


async def _serve_until_signalled(config: FakeConfig, port: int) -> None:
    runner, bound_port = await start_site(FakeProvider(config), port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"LISTENING http://{HOST}:{bound_port}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Subprocess entry point: serve until SIGTERM/SIGINT."""
    config, port = _parse_args(argv)
    asyncio.run(_serve_until_signalled(config, port))


if __name__ == "__main__":
    main()
