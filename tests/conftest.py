"""Suite-wide fixtures: real Postgres and Redis (see tests/infrastructure.py), one set
of databases and one Redis namespace per test run, dropped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.infrastructure import Infrastructure, database_url, drop_database, infrastructure, unique_name


@pytest.fixture(scope="session", autouse=True)
def suite_log(tmp_path_factory):
    """Captures every log line of the run; fails the run if one holds a registered key."""
    from tests.leak_watch import SuiteLog

    log = SuiteLog(tmp_path_factory.mktemp("service-logs"))
    log.start()
    yield log
    log.stop()
    assert log.canary in log.text(), "the capture lost its canary: an absence of keys would prove nothing"
    leaked = log.leaked()
    assert not leaked, f"API keys appeared in logs: {leaked}"


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


@pytest.fixture(scope="session")
def stack(make_database, infra: Infrastructure, redis_namespace: str):
    """Registry, task store and gateway on loopback ports, shared by the whole run;
    tests keep apart by using projects of their own."""
    from tests.stack import running_stack

    # Tests leave jobs unfinished on purpose, some with their Redis keys deleted: the
    # sweeper would enqueue those again within a minute, and another test's workers would
    # run them. Recovery is tested on stacks of its own (tests/end_to_end/test_stalled_job_recovery.py).
    with running_stack(
        make_database=make_database,
        redis_url=infra.redis_url,
        redis_namespace=redis_namespace,
        stalled_job_seconds=24 * 3600,
    ) as running:
        yield running


@pytest.fixture
def fake_llm(stack):
    """The stack's fake provider, reset to its defaults for each test."""
    from synthtasks_fake_llm import FakeConfig

    defaults = FakeConfig()
    stack.fake_llm.configure(**{name: getattr(defaults, name) for name in defaults.__dataclass_fields__})
    stack.fake_llm.reset_stats()
    return stack.fake_llm


@pytest.fixture
def generation(stack, fake_llm):
    """The public API as the admin, with helpers to run jobs (tests/jobs_harness.py)."""
    from tests.jobs_harness import Generation

    return Generation(stack, fake_llm, stack.admin())
