"""The gateway's gauge of the work waiting for workers, read from the real Redis at each
scrape: the fair backlog and the Dramatiq queue it feeds."""

from __future__ import annotations

import math

import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.gateway.server import export_queue_sizes
from services.generation_queue.backlog import Backlog
from services.generation_queue.messages import slot_ranges
from tests.infrastructure import Infrastructure


def scraped(stage: str) -> float:
    return REGISTRY.get_sample_value("synthtasks_generation_queue_ranges", {"stage": stage})


@pytest.fixture
def backlog(infra: Infrastructure, redis_namespace: str, request: pytest.FixtureRequest) -> Backlog:
    return Backlog(redis.Redis.from_url(infra.redis_url), f"{redis_namespace}-{request.node.name[:40]}")


def test_the_gauge_shows_what_waits_in_the_backlog_and_in_the_queue(backlog: Backlog) -> None:
    export_queue_sizes(backlog)
    assert (scraped("backlog"), scraped("queue")) == (0, 0)

    backlog.enqueue_job(slot_ranges("projects/p/generationJobs/j", 100, 16))
    backlog.dispatch(broker_id="a-worker", ready=3)

    assert (scraped("backlog"), scraped("queue")) == (4, 3)


def test_the_gauge_is_unknown_not_a_failed_scrape_while_redis_is_down(backlog: Backlog) -> None:
    export_queue_sizes(Backlog(redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0)), "unreachable"))
    assert math.isnan(scraped("backlog"))

    export_queue_sizes(backlog)  # the control: a reachable Redis gives a number again
    assert scraped("backlog") == 0
