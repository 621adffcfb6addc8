"""`synthtasks-task-store [serve|migrate]`."""

from __future__ import annotations

import argparse

from services.runtime.json_logging import configure_logging
from services.runtime.metrics import serve_metrics
from services.runtime.migrations import migrate
from services.runtime.server import run_until_signalled
from services.runtime.tracing import configure_tracing
from services.task_store.config import Settings
from services.task_store.server import MIGRATIONS, SERVICE, build_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="synthtasks-task-store", description="The synthtasks task store.")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve gRPC (default)")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    args = parser.parse_args()

    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    configure_tracing(SERVICE)
    if args.command == "migrate":
        migrate(settings.database_url, MIGRATIONS)
        return
    serve_metrics(settings.metrics_port, host=settings.listen_address.rpartition(":")[0] or "127.0.0.1")
    run_until_signalled(build_server(settings))


if __name__ == "__main__":
    main()
