"""What every command handler receives: the parsed arguments, the output, and a
gateway client opened on first use (so `stack` commands never need one)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from synthtasks_cli.gateway import ClientSettings, GatewayClient
from synthtasks_cli.output import Output
from synthtasks_cli.state import StateDir


@dataclass
class Context:
    args: argparse.Namespace
    out: Output
    _client: GatewayClient | None = field(default=None, repr=False)

    @property
    def state(self) -> StateDir:
        state_dir = getattr(self.args, "state_dir", None)
        return StateDir(Path(state_dir).absolute()) if state_dir else StateDir.from_env()

    def client_settings(self, **overrides: object) -> ClientSettings:
        options = {
            "gateway": getattr(self.args, "gateway", None),
            "token": getattr(self.args, "token", None),
            "tls_ca": getattr(self.args, "tls_ca", None),
            "tls_cert": getattr(self.args, "tls_cert", None),
            "tls_key": getattr(self.args, "tls_key", None),
            "tls_system_roots": getattr(self.args, "tls_system_roots", None),
            "timeout": getattr(self.args, "timeout", None),
            "state_dir": getattr(self.args, "state_dir", None),
        }
        options.update(overrides)
        return ClientSettings.resolve(**options)

    @property
    def client(self) -> GatewayClient:
        if self._client is None:
            self._client = GatewayClient(self.client_settings())
        return self._client

    def use_client(self, client: GatewayClient) -> None:
        """Replace the client (the demo points it at the stack it just started)."""
        self.close()
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
