"""`synthtasks-provider-registry [serve|migrate|rotate-master-key|create-token]`."""

from __future__ import annotations

import argparse
import json
import sys

from services.provider_registry.config import Settings
from services.provider_registry.server import MIGRATIONS, SERVICE, build_registry, build_server
from services.runtime.json_logging import configure_logging
from services.runtime.metrics import serve_metrics
from services.runtime.migrations import migrate
from services.runtime.server import run_until_signalled
from services.runtime.tracing import configure_tracing


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="synthtasks-provider-registry", description="The synthtasks provider registry."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve gRPC (default)")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    commands.add_parser("rotate-master-key", help="re-encrypt every stored API key with the first master key")
    token = commands.add_parser("create-token", help="mint an API token directly in the database (bootstrap)")
    token.add_argument("--admin", action="store_true", help="an admin token")
    token.add_argument("--project", action="append", default=[], help="project id (repeatable) for a project token")
    token.add_argument("--display-name", default="")
    args = parser.parse_args()

    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    configure_tracing(SERVICE)
    command = args.command or "serve"
    if command == "serve":
        serve_metrics(settings.metrics_port, host=settings.listen_address.rpartition(":")[0] or "127.0.0.1")
        run_until_signalled(build_server(settings))
        return
    migrate(settings.database_url, MIGRATIONS)
    if command == "migrate":
        return
    registry, pool = build_registry(settings)
    try:
        if command == "rotate-master-key":
            print(json.dumps({"re_encrypted": registry.rotate_master_key()}))
        else:
            if args.admin == bool(args.project):
                sys.exit("create-token: give either --admin or at least one --project")
            record, secret = registry.create_token(
                display_name=args.display_name, is_admin=args.admin, projects=sorted(set(args.project))
            )
            # The secret is printed once, to the operator who asked for it, never logged.
            print(json.dumps({"name": f"tokens/{record.id}", "secret": secret}))
    finally:
        pool.close()


if __name__ == "__main__":
    main()
