"""Postgres access: one connection pool per service process, and creating the service's
database on first start."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

log = logging.getLogger(__name__)


def ensure_database(url: str) -> None:
    """Create the database named in `url` if it does not exist yet."""
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise ValueError("the database URL must name a database")
    admin_url = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
                log.info("created database", extra={"database": name})
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                # Another replica won the race. Two CREATE DATABASE at the same moment
                # can also collide on pg_database's unique index instead.
                log.info("database created by another replica", extra={"database": name})


# Errors that say the database cannot be reached right now (restarting, connections
# terminated, no free connection in time), not that the request is wrong: callers get
# UNAVAILABLE and may retry.
CONNECTION_ERRORS = (psycopg.OperationalError, PoolTimeout, PoolClosed)

# How long a request waits for a pooled connection before it is answered UNAVAILABLE;
# below the gateway's downstream deadline, so the caller learns why.
POOL_TIMEOUT_SECONDS = 5.0


def create_pool(url: str, *, min_size: int = 2, max_size: int = 16) -> ConnectionPool:
    """Open a pool and wait until it holds `min_size` connections, so that a wrong URL
    fails at start-up rather than on the first request.

    Each connection is checked as it is handed out: after a Postgres restart the pool
    would otherwise hand out connections the server has closed, and the first call on
    each would fail."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name="synthtasks",
        check=ConnectionPool.check_connection,
        timeout=POOL_TIMEOUT_SECONDS,
    )
    pool.open(wait=True, timeout=15)
    return pool


def database_answers(pool: ConnectionPool) -> Callable[[], None]:
    """A readiness check (services/runtime/readiness.py): raises unless a pooled
    connection answers a query within a few seconds."""

    def check() -> None:
        with pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")

    return check
