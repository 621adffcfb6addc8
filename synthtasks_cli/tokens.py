"""`synthtasks tokens create|list|delete` (admin): API tokens, stored only as hashes.

The secret is shown once, by `create`; keep it somewhere safe."""

from __future__ import annotations

import argparse

from rich.console import Console
from synthtasks.v1 import token_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf
from synthtasks_cli.context import Context
from synthtasks_cli.errors import UsageError
from synthtasks_cli.output import enum_label, table, when


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "tokens", common, help="manage API tokens (admin)")

    create = leaf(actions, "create", common, help="mint a token (its secret is shown once)")
    role = create.add_mutually_exclusive_group(required=True)
    role.add_argument("--admin", action="store_true", help="an admin token (every project, providers, tokens)")
    role.add_argument("--project", action="append", metavar="PROJECT", help="a token for this project (repeatable)")
    create.add_argument("--display-name", default="", help="what the token is for")
    create.set_defaults(run=create_token)

    listing = leaf(actions, "list", common, help="list tokens (never their secrets)")
    listing.set_defaults(run=list_tokens)

    delete = leaf(actions, "delete", common, help="revoke a token")
    delete.add_argument("name", help="token id or tokens/ID")
    delete.set_defaults(run=delete_token)


def token_from_args(args: argparse.Namespace) -> pb.ApiToken:
    if args.admin:
        return pb.ApiToken(display_name=args.display_name, role=pb.TOKEN_ROLE_ADMIN)
    projects = sorted({names.project(p) for p in args.project or ()})
    if not projects:
        raise UsageError("give --admin or at least one --project")
    return pb.ApiToken(display_name=args.display_name, role=pb.TOKEN_ROLE_PROJECT, projects=projects)


def _role(token: pb.ApiToken) -> str:
    return enum_label(token.role, pb.TokenRole, "TOKEN_ROLE_")


def create_token(ctx: Context, args: argparse.Namespace) -> int:
    reply = ctx.client.call(ctx.client.tokens.CreateToken, pb.CreateTokenRequest(token=token_from_args(args)))

    def render(console: Console) -> None:
        scope = "every project" if reply.token.role == pb.TOKEN_ROLE_ADMIN else ", ".join(reply.token.projects)
        console.print(f"Created {reply.token.name} ({_role(reply.token)}: {scope})", markup=False)
        # Printed because the user asked for it and it is shown nowhere else; on its own
        # line so it can be copied or cut out with `tail -1`.
        console.print("Secret (shown only now; send it as 'authorization: Bearer <secret>'):", markup=False)
        console.print(reply.secret, markup=False)

    ctx.out.result(reply, render)
    return 0


def list_tokens(ctx: Context, args: argparse.Namespace) -> int:
    found = list(ctx.client.pages(ctx.client.tokens.ListTokens, pb.ListTokensRequest(page_size=200), "tokens"))

    def render(console: Console) -> None:
        if not found:
            console.print("No tokens.")
            return
        console.print(
            table(
                ["NAME", "DISPLAY NAME", "ROLE", "PROJECTS", "PREFIX", "CREATED"],
                [
                    (
                        names.short(t.name),
                        t.display_name,
                        _role(t),
                        ", ".join(names.short(p) for p in t.projects),
                        t.token_prefix,
                        when(t.create_time),
                    )
                    for t in found
                ],
            )
        )

    ctx.out.result(pb.ListTokensResponse(tokens=found), render)
    return 0


def delete_token(ctx: Context, args: argparse.Namespace) -> int:
    name = names.token(args.name)
    reply = ctx.client.call(ctx.client.tokens.DeleteToken, pb.DeleteTokenRequest(name=name))
    ctx.out.result(reply, lambda console: console.print(f"Deleted {name}", markup=False))
    return 0
