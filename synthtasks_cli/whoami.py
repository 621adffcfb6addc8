"""`synthtasks whoami`: which token this command line sends, its role and the projects
it may act in (a quick check of `--token` / SYNTHTASKS_TOKEN before a script runs)."""

from __future__ import annotations

import argparse

from rich.console import Console
from synthtasks.v1 import token_service_pb2 as pb

from synthtasks_cli.arguments import leaf
from synthtasks_cli.context import Context
from synthtasks_cli.output import enum_label

# Known projects printed for people at most; --json gives them all (up to the API's 1000).
SHOWN_KNOWN_PROJECTS = 20


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    who = leaf(commands, "whoami", common, help="the token in use: its role and the projects it may act in")
    who.set_defaults(run=whoami)


def whoami(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(ctx.client.tokens.GetCallerIdentity, pb.GetCallerIdentityRequest())

    def render(console: Console) -> None:
        label = f" ({reply.display_name})" if reply.display_name else ""
        console.print(f"Token:    {reply.token}{label}", markup=False)
        console.print(f"Role:     {enum_label(reply.role, pb.TokenRole, 'TOKEN_ROLE_')}", markup=False)
        if reply.all_projects:
            console.print("Projects: every project", markup=False)
            known = list(reply.known_projects)
            if known:
                more = len(known) - SHOWN_KNOWN_PROJECTS
                tail = f", … and {more} more (--json lists them)" if more > 0 else ""
                console.print("Known:    " + ", ".join(known[:SHOWN_KNOWN_PROJECTS]) + tail, markup=False)
        else:
            console.print("Projects: " + ", ".join(reply.projects), markup=False)

    ctx.out.result(reply, render)
    return 0
