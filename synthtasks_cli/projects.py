"""`synthtasks projects assign|unassign|providers`: which providers a project may use.

Projects belong to the annotation platform; synthtasks never needs one created first."""

from __future__ import annotations

import argparse

from rich.console import Console
from synthtasks.v1 import provider_service_pb2 as pb

from synthtasks_cli import names
from synthtasks_cli.arguments import group, leaf
from synthtasks_cli.context import Context
from synthtasks_cli.output import table, when
from synthtasks_cli.providers import kind_label, validation_label


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    actions = group(commands, "projects", common, help="assign providers to projects")

    assign = leaf(actions, "assign", common, help="let a project use a provider (admin)")
    assign.add_argument("project", help="project id or projects/ID")
    assign.add_argument("provider", help="provider id or providers/ID")
    assign.add_argument("--default", action="store_true", help="make it the project's default provider")
    assign.set_defaults(run=assign_provider)

    unassign = leaf(actions, "unassign", common, help="stop a project using a provider (admin)")
    unassign.add_argument("project", help="project id or projects/ID")
    unassign.add_argument("provider", help="provider id or providers/ID")
    unassign.set_defaults(run=unassign_provider)

    providers = leaf(actions, "providers", common, help="the providers a project may use")
    providers.add_argument("project", help="project id or projects/ID")
    providers.set_defaults(run=project_providers)


def assign_provider(ctx: Context, args: argparse.Namespace) -> int:
    request = pb.AssignProviderRequest(
        project=names.project(args.project), provider=names.provider(args.provider), default=args.default
    )
    reply = ctx.client.call(ctx.client.providers.AssignProvider, request)
    suffix = " as its default" if reply.project_provider.default else ""
    ctx.out.result(
        reply,
        lambda console: console.print(f"Assigned {request.provider} to {request.project}{suffix}", markup=False),
    )
    return 0


def unassign_provider(ctx: Context, args: argparse.Namespace) -> int:
    request = pb.UnassignProviderRequest(project=names.project(args.project), provider=names.provider(args.provider))
    reply = ctx.client.call(ctx.client.providers.UnassignProvider, request)
    ctx.out.result(
        reply, lambda console: console.print(f"Unassigned {request.provider} from {request.project}", markup=False)
    )
    return 0


def project_providers(ctx: Context, args: argparse.Namespace) -> int:
    project = names.project(args.project)
    reply = ctx.client.call(ctx.client.providers.ListProjectProviders, pb.ListProjectProvidersRequest(project=project))

    def render(console: Console) -> None:
        if not reply.project_providers:
            console.print(f"No providers are assigned to {project}.", markup=False)
            return
        console.print(
            table(
                ["PROVIDER", "DISPLAY NAME", "KIND", "MODEL / DEPLOYMENT", "DEFAULT", "VALIDATION", "ASSIGNED"],
                [
                    (
                        names.short(item.provider.name),
                        item.provider.display_name,
                        kind_label(item.provider.kind),
                        item.provider.deployment or item.provider.model,
                        "yes" if item.default else "",
                        validation_label(item.provider.last_validation)
                        if item.provider.last_validation.state
                        else "never",
                        when(item.assign_time),
                    )
                    for item in reply.project_providers
                ],
                title=project,
            )
        )

    ctx.out.result(reply, render)
    return 0
