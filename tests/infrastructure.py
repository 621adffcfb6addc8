"""Where the suite's Postgres and Redis come from.

By default the services already running on this machine (127.0.0.1:5432 and :6379);
with SYNTHTASKS_TEST_INFRA=testcontainers the same fixtures start throwaway containers
instead (needs a reachable Docker daemon). Either way each test run gets its own
databases and its own Redis key namespace, created and dropped by the suite."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

INFRA_SETTING = "SYNTHTASKS_TEST_INFRA"


@dataclass(frozen=True)
class Infrastructure:
    postgres_url: str  # server URL, no database
    redis_url: str


@contextlib.contextmanager
def infrastructure() -> Iterator[Infrastructure]:
    mode = os.environ.get(INFRA_SETTING, "local")
    if mode == "local":
        yield Infrastructure(
            postgres_url=os.environ.get(
                "SYNTHTASKS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            ),
            redis_url=os.environ.get("SYNTHTASKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        )
    elif mode == "testcontainers":
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        with PostgresContainer("postgres:16", driver=None) as pg, RedisContainer("redis:7") as rd:
            yield Infrastructure(
                postgres_url=pg.get_connection_url(),
                redis_url=f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0",
            )
    else:
        raise RuntimeError(f"{INFRA_SETTING} must be 'local' or 'testcontainers', not {mode!r}")


def database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
