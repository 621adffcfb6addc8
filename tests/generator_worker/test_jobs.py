"""Generation jobs end to end: the real gateway, task store and registry, two real
`synthtasks-worker` processes, the real openai SDK against the fake provider over HTTP."""

from __future__ import annotations

import collections
import json
import math
import time
import urllib.request

import pytest
import redis
from prometheus_client import REGISTRY
from synthtasks.v1 import generation_service_pb2 as gen_pb

from services.generation_queue.stop_flags import granted_calls_key
from tests.jobs_harness import Generation, log_dir_for, started_workers
from tests.leak_watch import new_key

REPORTED_MODEL = "gpt-4o-mini-2024-07-18"
APPEND_RESULTS = "/synthtasks.internal.v1.JobStoreService/AppendResults"


def append_calls() -> float:
    """AppendResults calls the suite's (in-process) task store has answered so far."""
    labels = {"service": "task-store", "method": APPEND_RESULTS, "code": "OK"}
    return REGISTRY.get_sample_value("synthtasks_grpc_requests_total", labels) or 0.0


@pytest.fixture(scope="module", autouse=True)
def workers(stack, suite_log, request):
    with started_workers(stack, log_dir_for(suite_log, request), count=2) as running:
        yield running


def test_each_request_of_a_seeded_job_gets_a_seed_of_its_own_derived_from_its_slot(generation: Generation) -> None:
    """The same seed on every request of a prompt would give every one the same text."""
    project = generation.new_project()
    generation.provider(project, max_choices=2)

    job = generation.wait(generation.start(project, 6, seed=7).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    # Requests of two choices: slots 0-1, 2-3 and 4-5, seeded with 7 + their first slot.
    assert sorted(generation.fake.stats().seeds) == [7, 9, 11]


def test_a_job_without_a_seed_sends_none(generation: Generation) -> None:
    project = generation.new_project()
    generation.provider(project)

    job = generation.wait(generation.start(project, 3).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert generation.fake.stats().completions_served == 3
    assert generation.fake.stats().seeds == []


@pytest.mark.parametrize("max_choices", [1, 4])
@pytest.mark.parametrize("kind", ["openai", "azure", "compatible"])
def test_a_job_ends_with_exactly_n_texts_with_their_lineage(
    generation: Generation, kind: str, max_choices: int
) -> None:
    project = generation.new_project()
    provider = generation.provider(project, kind, max_choices=max_choices)
    appends_before = append_calls()

    job = generation.wait(generation.start(project, 30, temperature=0.7, seed=7, max_output_tokens=40).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert (job.counts.produced, job.counts.failed) == (30, 0)
    texts = generation.staged(job)
    assert sorted(t.lineage.slot for t in texts) == list(range(30))
    for text in texts:
        assert text.text and text.lineage.provider == provider.name
        assert text.lineage.model == REPORTED_MODEL
        assert text.lineage.finish_reason == "stop"
        assert text.lineage.prompt_tokens > 0 and text.lineage.completion_tokens > 0
        assert text.lineage.latency.ToNanoseconds() > 0
        assert text.lineage.seed == 7 and text.lineage.temperature == pytest.approx(0.7)
    assert job.usage.prompt_tokens == sum(t.lineage.prompt_tokens for t in texts)
    assert job.usage.completion_tokens == sum(t.lineage.completion_tokens for t in texts)
    stats = generation.fake.stats()
    # Slots travel in ranges of 16 (16 + 14 here); each range asks for up to n choices per request.
    assert stats.completions_served == sum(math.ceil(size / max_choices) for size in (16, 14))
    assert stats.choices_served == 30
    # Results travel in batches, not one call per text.
    assert append_calls() - appends_before <= 8


def test_a_provider_that_ignores_n_still_fills_every_slot(generation: Generation) -> None:
    generation.fake.configure(honor_n=False)
    project = generation.new_project()
    generation.provider(project, "compatible", max_choices=8)

    job = generation.wait(generation.start(project, 20).name)

    assert (job.state, job.counts.produced) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 20)
    assert generation.fake.stats().completions_served == 20


def test_texts_are_spread_evenly_over_the_variables_and_record_their_values(generation: Generation) -> None:
    project = generation.new_project()
    generation.provider(project, max_choices=4)
    variables = [gen_pb.PromptVariable(name="drug", values=["aspirin", "ibuprofen", "paracetamol"])]

    job = generation.wait(generation.start(project, 12, prompt="A side effect of {drug}", variables=variables).name)

    texts = generation.staged(job)
    assert collections.Counter(t.lineage.variables["drug"] for t in texts) == {
        "aspirin": 4,
        "ibuprofen": 4,
        "paracetamol": 4,
    }
    # The fake writes about the prompt it got: the text was made from the rendered prompt.
    for text in texts:
        assert f"A side effect of {text.lineage.variables['drug']}"[:40] in text.text


def test_transient_faults_are_retried_until_every_text_is_there(generation: Generation) -> None:
    generation.fake.configure(rate_429=0.3, retry_after_seconds=0.1, rate_500=0.1, rate_timeout=0.05, hang_seconds=5)
    project = generation.new_project()
    generation.provider(project, request_timeout_seconds=1)

    job = generation.wait(generation.start(project, 40).name, timeout=90)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert (job.counts.produced, job.counts.failed) == (40, 0)
    assert len(generation.staged(job)) == 40
    stats = generation.fake.stats()
    assert stats.injected_429s > 0 and stats.errors_500 > 0
    assert stats.choices_served == 40


def _fails_whole_job_within_seconds(generation: Generation, project: str, reason: int) -> gen_pb.GenerationJob:
    """A 500-text job that must end FAILED with `reason` after one wave of calls, having
    written nothing, instead of after 500 texts x retries (the callers count the calls;
    the timeout only says that it ended at all)."""
    job = generation.wait(generation.start(project, 500).name, timeout=60)

    assert job.state == gen_pb.GENERATION_JOB_STATE_FAILED
    assert job.error.reason == reason
    assert job.counts.produced == 0
    _wait_until_its_granted_calls_ended(generation, job.name)
    return job


def _wait_until_its_granted_calls_ended(generation: Generation, job: str) -> None:
    """Calls granted before the job failed may still be on their way (each is sent within
    its send-by time or not at all): once none is recorded and none is at the provider,
    the fake's counts are the job's whole cost, and no later test receives its calls."""
    settings = generation.stack.gateway_settings
    client = redis.Redis.from_url(settings.redis_url)
    key = granted_calls_key(settings.redis_namespace, job)
    try:
        deadline = time.monotonic() + 30
        while client.zcard(key) or generation.fake.stats().in_flight:
            assert time.monotonic() < deadline, "calls granted to the failed job never ended"
            time.sleep(0.05)
    finally:
        client.close()


def test_a_wrong_key_fails_the_whole_job_within_seconds_without_showing_the_key(generation: Generation) -> None:
    good, wrong = new_key(), new_key()
    generation.fake.configure(api_keys={good})
    project = generation.new_project()
    generation.provider(project, key=wrong)

    job = _fails_whole_job_within_seconds(generation, project, gen_pb.FAILURE_REASON_INVALID_KEY)

    assert "Incorrect API key" in job.error.message
    assert wrong not in job.error.message and wrong[-12:] not in job.error.message
    # One wave of calls at most (a call per text: the defaults hold the whole job in
    # flight at once), not 500 texts x retries.
    assert generation.fake.stats().keys_seen_bad <= 500


def test_an_account_out_of_quota_fails_the_whole_job_within_seconds(generation: Generation) -> None:
    """OpenAI's 429 insufficient_quota is not a rate limit: no wait helps, so no retries."""
    generation.fake.configure(rate_no_quota=1.0)
    project = generation.new_project()
    generation.provider(project)

    job = _fails_whole_job_within_seconds(generation, project, gen_pb.FAILURE_REASON_QUOTA_EXCEEDED)

    assert "exceeded your current quota" in job.error.message
    # One wave of calls at most (a call per text: the defaults hold the whole job in
    # flight at once), not 500 texts x retries.
    assert generation.fake.stats().quota_429s <= 500


def test_content_filtered_texts_fail_with_the_reason_and_are_not_retried(generation: Generation) -> None:
    generation.fake.configure(rate_content_filter=1.0)
    project = generation.new_project()
    generation.provider(project, "azure")

    job = generation.wait(generation.start(project, 5).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_FAILED
    assert (job.counts.produced, job.counts.failed) == (0, 5)
    assert job.error.reason == gen_pb.FAILURE_REASON_CONTENT_FILTERED
    assert "content management policy" in job.error.message
    # Counted on the Azure route alone: calls of an earlier test's OpenAI job, granted
    # before it failed, may still arrive and be filtered too.
    azure_calls = generation.fake.stats().requests_by_route["POST /openai/deployments/{deployment}/chat/completions"]
    assert azure_calls == 5, "a filtered text is not asked for again"


def test_cancel_stops_provider_calls(generation: Generation) -> None:
    generation.fake.configure(latency_ms=300)
    project = generation.new_project()
    generation.provider(project, max_concurrent=4)
    job = generation.start(project, 300)
    generation.wait_until(job.name, lambda j: j.counts.produced >= 8)

    cancelled = generation.cancel(job.name)
    acknowledged = time.monotonic()
    time.sleep(1.5)

    assert cancelled.state == gen_pb.GENERATION_JOB_STATE_CANCELLED
    arrivals = generation.fake.stats().arrivals
    assert max(arrivals) <= acknowledged
    final = generation.get(job.name)
    assert final.state == gen_pb.GENERATION_JOB_STATE_CANCELLED
    assert final.counts.produced < 300
    assert len(generation.staged(final)) == final.counts.produced


def _next_reply_number(generation: Generation) -> int:
    """Ask the fake once (numbers are global to the server) and return the next number it will use."""
    request = urllib.request.Request(
        generation.fake.openai_base_url + "/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "probe"}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        text = json.load(response)["choices"][0]["message"]["content"]
    return int(text.split(":")[0].removeprefix("Sample ")) + 1


def test_unique_jobs_replace_duplicates(generation: Generation) -> None:
    project = generation.new_project()
    generation.provider(project)
    # Replies cycle over two texts; job A stores the one of even numbers.
    if _next_reply_number(generation) % 2:
        _next_reply_number(generation)
    generation.fake.configure(distinct_replies=2)
    first = generation.wait(generation.start(project, 1).name)
    assert first.counts.duplicates == 0
    # Job B's first reply (an even number again) repeats A's text: refused, replaced by an odd one.
    generation.fake.configure(distinct_replies=None)
    if _next_reply_number(generation) % 2:
        _next_reply_number(generation)
    generation.fake.configure(distinct_replies=2)

    job = generation.wait(generation.start(project, 1, unique=True).name)

    assert (job.state, job.counts.produced, job.counts.duplicates) == (gen_pb.GENERATION_JOB_STATE_SUCCEEDED, 1, 1)
    [text] = generation.staged(job)
    [original] = generation.staged(first)
    assert text.text != original.text and not text.duplicate


def test_unique_jobs_give_up_after_a_bounded_number_of_extra_calls(generation: Generation) -> None:
    generation.fake.configure(fixed_reply="Always the same sentence.")
    project = generation.new_project()
    generation.provider(project)
    generation.wait(generation.start(project, 1).name)
    generation.fake.reset_stats()

    job = generation.wait(generation.start(project, 1, unique=True).name)

    # 1 call + 3 replacements (the default unique_extra_calls); the last one repeats too,
    # so the slot fails with the reason instead of staging a duplicate.
    assert generation.fake.stats().completions_served == 4
    assert (job.state, job.counts.produced, job.counts.failed) == (gen_pb.GENERATION_JOB_STATE_FAILED, 0, 1)
    assert job.error.reason == gen_pb.FAILURE_REASON_DUPLICATE
    assert generation.staged(job) == []
