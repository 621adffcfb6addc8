"""Who is calling: bearer tokens checked against the registry (by hash, never the
secret), cached briefly so that one API call is not two."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import grpc
from synthtasks.internal.v1 import auth_service_pb2, auth_service_pb2_grpc

from services.runtime.errors import PermissionDenied, Unauthenticated


@dataclass(frozen=True)
class Principal:
    admin: bool
    projects: frozenset[str]
    token: str

    def require_admin(self) -> None:
        if not self.admin:
            raise PermissionDenied("this call needs an admin token", reason="ADMIN_REQUIRED")

    def require_project(self, project_id: str) -> None:
        if not self.admin and project_id not in self.projects:
            raise PermissionDenied(f"this token may not act in projects/{project_id}", reason="PROJECT_NOT_ALLOWED")


class Authenticator:
    def __init__(self, stub: auth_service_pb2_grpc.AuthServiceStub, *, cache_seconds: float, timeout: float) -> None:
        self._stub = stub
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def principal(self, context: grpc.ServicerContext) -> Principal:
        header = dict(context.invocation_metadata()).get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("send 'authorization: Bearer <token>' metadata", reason="TOKEN_MISSING")
        digest = hashlib.sha256(secret.strip().encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            reply = self._stub.AuthenticateToken(
                auth_service_pb2.AuthenticateTokenRequest(token_sha256=digest), timeout=self._timeout
            )
            found = Principal(reply.admin, frozenset(reply.projects), reply.token) if reply.authenticated else None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._cache_seconds, found)
        if found is None:
            raise Unauthenticated("unknown or revoked token", reason="TOKEN_UNKNOWN")
        return found
