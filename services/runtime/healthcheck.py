"""`synthtasks-healthcheck ADDRESS`: exit 0 when the gRPC health service answers SERVING.

Used by container health checks; reads the same TLS settings as the services."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.channels import raw_channel
from services.runtime.config import TlsSettings


def check(address: str, *, service: str = "", timeout: float = 3.0) -> bool:
    with raw_channel(address, TlsSettings()) as channel:
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(  # type: ignore[attr-defined]  # grpcio-health-checking's stubs omit the stub's methods
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("--service", default="")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()
    sys.exit(0 if check(args.address, service=args.service, timeout=args.timeout) else 1)
