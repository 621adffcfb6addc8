"""Numbered SQL migrations (`migrations/0001_name.sql`) applied once each, in order.

Every service keeps its files in its own package and its own `schema_migrations`
table; an advisory lock makes concurrent starts (several replicas, a migration Job)
safe, and a second run applies nothing."""

from __future__ import annotations

import logging
import re
from importlib import resources

import psycopg

from services.runtime.database import ensure_database

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Arbitrary constant shared by all services: migrations of one database never run in parallel.
_ADVISORY_LOCK_ID = 0x5E7A5C5


def migrate(url: str, package: str) -> list[str]:
    """Create the database if missing and apply the package's pending migrations.

    Returns the file names applied by this call."""
    ensure_database(url)
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in resources.files(package).iterdir()
        if _FILE_NAME.match(entry.name)
    )
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for name, script in files:
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(script)
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
                applied_now.append(name)
                log.info("applied migration", extra={"migration": name})
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
    return applied_now
