"""The argument parser: global options, then one sub-command group per module.

Global options are accepted before or after the sub-command (`synthtasks --json
providers list` and `synthtasks providers list --json`): every leaf parser gets them
as a parent with suppressed defaults, so a value given anywhere wins."""

from __future__ import annotations

import argparse
from importlib import metadata

from synthtasks_cli import demo, generate, jobs, labeling, projects, providers, stack, tasks, texts, tokens
from synthtasks_cli.arguments import Formatter

GROUPS = (providers, projects, tokens, generate, jobs, texts, tasks, labeling, stack, demo)


def _version() -> str:
    try:
        return metadata.version("synthtasks")
    except metadata.PackageNotFoundError:
        return "unknown"


def _add_global_options(parser: argparse.ArgumentParser, *, hidden: bool = False) -> None:
    """The options of every command; `hidden` keeps sub-command help short (they are
    listed once, in `synthtasks --help`)."""

    def add(*flags: str, help: str, **kwargs: object) -> None:
        parser.add_argument(*flags, help=argparse.SUPPRESS if hidden else help, **kwargs)  # type: ignore[arg-type]

    add(
        "--gateway",
        metavar="ADDRESS",
        help="gateway host:port (env SYNTHTASKS_GATEWAY_ADDRESS; default: the local stack's, else 127.0.0.1:50051)",
    )
    add(
        "--token",
        help="bearer token (env SYNTHTASKS_TOKEN; default: the admin token `stack up` stored in the state folder)",
    )
    add("--json", action="store_true", help="print machine-readable JSON on stdout")
    add("--timeout", type=float, metavar="SECONDS", help="deadline of each gateway call")
    add("--tls-ca", metavar="FILE", help="CA certificate for TLS to the gateway (env SYNTHTASKS_TLS_CA_FILE)")
    add("--tls-cert", metavar="FILE", help="client certificate for mTLS (env SYNTHTASKS_TLS_CERT_FILE)")
    add("--tls-key", metavar="FILE", help="client key for mTLS (env SYNTHTASKS_TLS_KEY_FILE)")
    add(
        "--tls-system-roots",
        action="store_true",
        default=None,
        help="TLS to the gateway, trusting the system's root certificates (env SYNTHTASKS_TLS_SYSTEM_ROOTS=true)",
    )
    add(
        "--state-dir",
        metavar="DIR",
        help="local stack state folder (env SYNTHTASKS_STATE_DIR, default ./.synthtasks)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS, allow_abbrev=False)
    _add_global_options(common, hidden=True)
    root = argparse.ArgumentParser(
        prog="synthtasks",
        description="Generate synthetic annotation texts with LLMs: a client of the synthtasks gateway.",
        epilog="Start a local stack with `synthtasks stack up`, or run everything once with `synthtasks demo`.",
        formatter_class=Formatter,
        allow_abbrev=False,
    )
    _add_global_options(root)
    root.add_argument("--version", action="version", version=f"synthtasks {_version()}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(commands, common)
    return root
