"""`synthtasks-web`: serve the review web app (uvicorn)."""

from __future__ import annotations

import uvicorn

from services.runtime.json_logging import configure_logging
from services.runtime.metrics import serve_metrics
from services.web.app import SERVICE, create_app
from services.web.config import Settings


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    host, _, port = settings.listen_address.rpartition(":")
    serve_metrics(settings.metrics_port, host=host or "127.0.0.1")
    # log_config=None keeps our JSON logging; access lines carry paths only (no token is
    # ever in a URL).
    uvicorn.run(create_app(settings), host=host or "127.0.0.1", port=int(port), log_config=None, proxy_headers=True)


if __name__ == "__main__":
    main()
