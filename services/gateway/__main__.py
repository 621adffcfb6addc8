"""`synthtasks-gateway`: serve the public synthtasks.v1 API."""

from __future__ import annotations

from services.gateway.config import Settings
from services.gateway.server import SERVICE, build_server
from services.runtime.json_logging import configure_logging
from services.runtime.metrics import serve_metrics
from services.runtime.server import run_until_signalled
from services.runtime.tracing import configure_tracing


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    configure_tracing(SERVICE)
    serve_metrics(settings.metrics_port, host=settings.listen_address.rpartition(":")[0] or "127.0.0.1")
    run_until_signalled(build_server(settings))


if __name__ == "__main__":
    main()
