"""The audit trail of admin changes to providers, assignments and tokens.

Each change the registry makes for an admin is recorded as one event (who: the
caller's token name as the gateway vouches for it; what: the RPC, the resource and a
summary that names fields, never values of secrets; when), stored in `audit_events`
and written as one `synthtasks.audit` log line. The event is written right after the
change commits, in its own transaction: if the database fails between the two, the
call fails (UNAVAILABLE) although the change was made - the one gap, visible to the
caller. Changes made by the registry's own command line (create-token) have the
actor `local`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from services.runtime.call_metadata import caller_token_var
from services.runtime.json_logging import request_id_var

log = logging.getLogger("synthtasks.audit")

LOCAL_ACTOR = "local"


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    actor: str
    method: str
    resource: str
    summary: str
    request_id: str
    create_time: datetime


class AuditTrail:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def record(self, method: str, resource: str, summary: str) -> None:
        """Record one change made by the current call; `method` like `ProviderService/UpdateProvider`."""
        actor = caller_token_var.get() or LOCAL_ACTOR
        full_method = f"synthtasks.v1.{method}"
        request_id = request_id_var.get()
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO audit_events (actor, method, resource, summary, request_id) VALUES (%s, %s, %s, %s, %s)",
                (actor, full_method, resource, summary, request_id),
            )
        log.info(
            "audit",
            extra={"actor": actor, "audited_method": full_method, "resource": resource, "summary": summary},
        )

    def list(self, *, before_seq: int | None, limit: int) -> list[AuditEvent]:
        """Newest first."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT seq, actor, method, resource, summary, request_id, create_time FROM audit_events"
                " WHERE %(before)s::bigint IS NULL OR seq < %(before)s ORDER BY seq DESC LIMIT %(limit)s",
                {"before": before_seq, "limit": limit},
            ).fetchall()
        return [AuditEvent(**row) for row in rows]
