"""Suite-wide fixtures: real Postgres and Redis (see tests/infrastructure.py), one set
of databases and one Redis namespace per test run, dropped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.infrastructure import Infrastructure, database_url, drop_database, infrastructure, unique_name


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    with infrastructure() as found:
        yield found


@pytest.fixture(scope="session")
def make_database(infra: Infrastructure) -> Iterator:
    """Factory: a fresh database URL (the service creates and migrates it); all are dropped."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = unique_name(f"synthtasks_test_{prefix}")
        created.append(name)
        return database_url(infra.postgres_url, name)

    yield make
    for name in created:
        drop_database(infra.postgres_url, name)


@pytest.fixture(scope="session")
def redis_namespace(infra: Infrastructure) -> Iterator[str]:
    """A key prefix of this run's own; every key under it is deleted at the end."""
    namespace = unique_name("synthtasks-test")
    yield namespace
    client = redis.Redis.from_url(infra.redis_url)
    for key in client.scan_iter(match=f"{namespace}*", count=1000):
        client.delete(key)
    client.close()
