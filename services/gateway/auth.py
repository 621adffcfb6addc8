"""Who is calling: bearer tokens checked against the registry (by hash, never the
secret), cached briefly so that one API call is not two.

A flood of unknown tokens must cost the registry little: every client address has a
budget of failed look-ups (a token bucket: `auth_failure_burst`, refilled at
`auth_failures_per_minute`). An address that spent it gets RESOURCE_EXHAUSTED with a
RetryInfo for any token the gateway does not already know, without a registry call.
Valid callers are unaffected: a token seen valid in the last hour is looked up again
whatever its address's budget (it is still checked, so a revoked token stops working
after `auth_cache_seconds`), and successes cost nothing."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import grpc
from synthtasks.internal.v1 import auth_service_pb2, auth_service_pb2_grpc

from services.runtime.call_metadata import caller_project_var, caller_token_var
from services.runtime.errors import PermissionDenied, QuotaViolation, ResourceExhausted, Unauthenticated
from services.vocabulary.reasons import Reason

# How long a token once seen valid skips its address's failure budget.
_KNOWN_VALID_SECONDS = 3600.0
# Addresses (and known-valid digests) remembered at most; the oldest are forgotten.
_MAX_TRACKED = 100_000


@dataclass(frozen=True)
class Principal:
    admin: bool
    projects: frozenset[str]
    token: str

    def require_admin(self) -> None:
        if not self.admin:
            raise PermissionDenied("this call needs an admin token", reason=Reason.ADMIN_REQUIRED)

    def require_project(self, project_id: str) -> None:
        caller_project_var.set(project_id)  # the access log names the project acted in
        if not self.admin and project_id not in self.projects:
            raise PermissionDenied(
                f"this token may not act in projects/{project_id}", reason=Reason.PROJECT_NOT_ALLOWED
            )


class FailureBudget:
    """Per-address token buckets of failed authentications."""

    def __init__(self, *, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        # address -> (tokens left, when last refilled); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait_seconds(self, address: str, now: float) -> float:
        """0 when `address` may try one more unknown token, else how long until it may."""
        with self._lock:
            left = self._refilled(address, now)
        return 0.0 if left >= 1.0 else (1.0 - left) / self._rate

    def spend(self, address: str, now: float) -> None:
        with self._lock:
            self._buckets[address] = (max(0.0, self._refilled(address, now) - 1.0), now)
            self._buckets.move_to_end(address)
            if len(self._buckets) > _MAX_TRACKED:
                self._buckets.popitem(last=False)

    def _refilled(self, address: str, now: float) -> float:
        left, since = self._buckets.get(address, (self._burst, now))
        return min(self._burst, left + (now - since) * self._rate)


def client_address(context: grpc.ServicerContext | grpc.aio.ServicerContext) -> str:
    """The caller's IP without its port ("ipv4:10.0.0.7:53122" -> "ipv4:10.0.0.7")."""
    peer = context.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


class Authenticator:
    def __init__(
        self,
        stub: auth_service_pb2_grpc.AuthServiceStub,
        *,
        cache_seconds: float,
        timeout: float,
        failures_per_minute: float,
        failure_burst: int,
    ) -> None:
        self._stub = stub
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._known_valid: OrderedDict[str, float] = OrderedDict()
        self._failures = FailureBudget(per_minute=failures_per_minute, burst=failure_burst)
        self._lock = threading.Lock()

    def principal(self, context: grpc.ServicerContext | grpc.aio.ServicerContext) -> Principal:
        """The caller; also names its token for the access log of this call."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, secret = header.partition(" ") if isinstance(header, str) else ("", "", "")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("send 'authorization: Bearer <token>' metadata", reason=Reason.TOKEN_MISSING)
        digest = hashlib.sha256(secret.strip().encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
            known_valid = self._known_valid.get(digest, 0.0) > now
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            address = client_address(context)
            if not known_valid:
                self._check_budget(address, now)
            reply = self._stub.AuthenticateToken(
                auth_service_pb2.AuthenticateTokenRequest(token_sha256=digest), timeout=self._timeout
            )
            found = Principal(reply.admin, frozenset(reply.projects), reply.token) if reply.authenticated else None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._cache_seconds, found)
                if found is not None:
                    self._known_valid[digest] = now + _KNOWN_VALID_SECONDS
                    self._known_valid.move_to_end(digest)
                    if len(self._known_valid) > _MAX_TRACKED:
                        self._known_valid.popitem(last=False)
            if found is None:
                self._failures.spend(address, now)
        if found is None:
            raise Unauthenticated("unknown or revoked token", reason=Reason.TOKEN_UNKNOWN)
        caller_token_var.set(found.token)
        return found

    def _check_budget(self, address: str, now: float) -> None:
        wait = self._failures.wait_seconds(address, now)
        if wait > 0:
            raise ResourceExhausted(
                f"too many failed authentications from {address}; retry later",
                [QuotaViolation(f"clients/{address}", "failed-authentications: budget spent")],
                retry_after_seconds=wait,
                reason=Reason.AUTH_FAILURES_RATE_LIMITED,
            )
