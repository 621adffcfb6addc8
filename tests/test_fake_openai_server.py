"""The fake provider must look like OpenAI and Azure OpenAI to the real SDK, or every test built on it lies."""

from __future__ import annotations

import asyncio
import json
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

from synthtasks_fake_llm import FakeConfig, FakeOpenAIServer, FakeStats

KEY = "sk-test-0123456789abcdef"
MODEL = "gpt-4o-mini"
DEPLOYMENT = "gpt4o-deploy"
PROMPT = "Write a short discharge note for a patient"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(FakeConfig(api_keys={KEY})) as running:
        yield running


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[OpenAI]:
    with OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0, timeout=5) as sdk:
        yield sdk


@pytest.fixture
def azure(server: FakeOpenAIServer) -> Iterator[AzureOpenAI]:
    with AzureOpenAI(
        azure_endpoint=server.base_url, api_key=KEY, api_version="2024-06-01", max_retries=0, timeout=5
    ) as sdk:
        yield sdk


def complete(sdk: OpenAI, **overrides: Any) -> Any:
    return sdk.chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **overrides})


def control(server: FakeOpenAIServer, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        server.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_completion_with_n_3_returns_three_distinct_non_empty_choices(server: FakeOpenAIServer, client: OpenAI) -> None:
    completion = complete(client, n=3)

    texts = [choice.message.content for choice in completion.choices]
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    assert all(text and len(text.split()) >= 5 for text in texts)
    assert len(set(texts)) == 3
    assert all(choice.finish_reason == "stop" for choice in completion.choices)
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.usage.completion_tokens == sum(len(text.split()) for text in texts)
    assert completion.usage.prompt_tokens == len(PROMPT.split())
    assert completion.system_fingerprint
    stats = server.stats()
    assert (stats.completions_served, stats.choices_served) == (1, 3)


def test_server_that_ignores_n_returns_exactly_one_choice(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(honor_n=False)

    assert len(complete(client, n=4).choices) == 1


def test_replies_stay_unique_across_requests(client: OpenAI) -> None:
    texts = [choice.message.content for _ in range(3) for choice in complete(client, n=2).choices]

    assert len(set(texts)) == 6


def test_distinct_replies_cycle_to_produce_duplicates_and_fixed_reply_wins(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.configure(distinct_replies=2)
    assert len({choice.message.content for choice in complete(client, n=6).choices}) == 2

    server.configure(fixed_reply="Always the same words.")
    assert {choice.message.content for choice in complete(client, n=3).choices} == {"Always the same words."}


def test_max_tokens_truncates_the_reply_and_reports_length(client: OpenAI) -> None:
    choice = complete(client, max_completion_tokens=2).choices[0]

    assert len(choice.message.content.split()) == 2
    assert choice.finish_reason == "length"


def test_models_can_be_listed_and_retrieved(client: OpenAI) -> None:
    assert [model.id for model in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL


def test_bad_openai_key_raises_authentication_error_echoing_the_key(server: FakeOpenAIServer, client: OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        complete(client.with_options(api_key="sk-wrong-secret-key"))

    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-secret-key" in caught.value.message
    assert caught.value.request_id
    assert server.stats().keys_seen_bad == 1


def test_bad_openai_key_is_masked_when_echo_is_off(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(echo_key_in_errors=False)

    with pytest.raises(openai.AuthenticationError) as caught:
        client.with_options(api_key="sk-wrong-secret-key").models.list()

    assert "secret" not in caught.value.message


def test_bad_azure_key_raises_authentication_error(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        complete(azure.with_options(api_key="wrong"), model=DEPLOYMENT)

    assert caught.value.code == "401"
    assert "Access denied" in caught.value.message


def test_no_configured_keys_means_no_auth_like_a_local_server() -> None:
    with (
        FakeOpenAIServer() as open_server,
        OpenAI(base_url=open_server.openai_base_url, api_key="anything", max_retries=0) as sdk,
    ):
        assert complete(sdk).choices


def test_unknown_model_raises_not_found_on_retrieve_and_completion(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as retrieved:
        client.models.retrieve("gpt-9")
    with pytest.raises(openai.NotFoundError) as completed:
        complete(client, model="gpt-9")

    assert retrieved.value.code == completed.value.code == "model_not_found"
    assert "The model 'gpt-9' does not exist" in completed.value.message


def test_azure_completion_on_a_known_deployment_reports_the_deployed_model(azure: AzureOpenAI) -> None:
    completion = complete(azure, model=DEPLOYMENT, n=2)

    assert len(completion.choices) == 2
    assert completion.model == "gpt-4o-mini-2024-07-18"


def test_unknown_deployment_raises_not_found_with_deployment_not_found_code(azure: AzureOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        complete(azure, model="no-such-deploy")

    assert caught.value.code == "DeploymentNotFound"


def test_injected_429_carries_retry_after_and_is_counted(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(rate_429=1.0, retry_after_seconds=0.5)

    with pytest.raises(openai.RateLimitError) as caught:
        complete(client)

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "0.5"
    assert caught.value.response.headers["retry-after-ms"] == "500"
    stats = server.stats()
    assert (stats.injected_429s, stats.limit_429s, stats.completions_served) == (1, 0, 0)


def test_sdk_retries_an_injected_429_after_retry_after(server: FakeOpenAIServer) -> None:
    server.configure(rate_429=0.5, retry_after_seconds=0.05, seed=3)

    with OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=10) as sdk:
        for _ in range(4):
            complete(sdk)

    stats = server.stats()
    assert stats.completions_served == 4
    assert stats.injected_429s >= 1


def test_injected_500_raises_internal_server_error(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(rate_500=1.0)

    with pytest.raises(openai.InternalServerError):
        complete(client)

    assert server.stats().errors_500 == 1


def test_hanging_request_times_out_the_client_and_releases_its_slot(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(rate_timeout=1.0, hang_seconds=120)

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model=MODEL, messages=MESSAGES)
    deadline = time.monotonic() + 30  # long before the hang would end by itself
    while server.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.01)

    stats = server.stats()
    assert stats.timeouts == 1
    assert stats.in_flight == 0  # the handler was cancelled when the client hung up


def test_wrong_shape_reply_lacks_choices_and_the_server_keeps_serving(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(rate_wrong_shape=1.0)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    server.configure(rate_wrong_shape=0.0)

    assert raw.http_response.status_code == 200
    assert "choices" not in raw.http_response.json()
    assert complete(client).choices
    assert server.stats().wrong_shapes == 1


def test_content_filter_is_a_finish_reason_on_openai_and_a_400_on_azure(
    server: FakeOpenAIServer, client: OpenAI, azure: AzureOpenAI
) -> None:
    server.configure(rate_content_filter=1.0)

    choice = complete(client).choices[0]
    with pytest.raises(openai.BadRequestError) as caught:
        complete(azure, model=DEPLOYMENT)

    assert (choice.finish_reason, choice.message.content) == ("content_filter", "")
    assert caught.value.code == "content_filter"
    assert server.stats().content_filtered == 2


def test_rpm_limit_rejects_excess_requests_with_retry_after(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(rpm_limit=3)

    for _ in range(3):
        complete(client)
    with pytest.raises(openai.RateLimitError) as caught:
        complete(client)

    assert 55 < float(caught.value.response.headers["retry-after"]) <= 60
    stats = server.stats()
    assert (stats.limit_429s, stats.injected_429s, stats.completions_served) == (1, 0, 3)
    assert stats.requests_per_window(60) == 4


def test_latency_is_applied_to_each_completion(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(latency_ms=150, latency_jitter_ms=20)

    started = time.monotonic()
    complete(client)
    complete(client)

    assert time.monotonic() - started >= 2 * 0.13


def test_concurrent_async_requests_overlap_and_peak_in_flight_is_recorded(server: FakeOpenAIServer) -> None:
    server.configure(latency_ms=200)

    async def burst() -> list[Any]:
        async with AsyncOpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as sdk:
            return await asyncio.gather(
                *(sdk.chat.completions.create(model=MODEL, messages=MESSAGES) for _ in range(16))
            )

    completions = asyncio.run(burst())

    assert len(completions) == 16
    assert server.stats().max_in_flight == 16  # overlapped, not serialised


def test_requests_per_window_reports_the_busiest_window() -> None:
    stats = FakeStats(arrivals=[0.0, 10.0, 20.0, 59.9, 60.0, 61.0, 200.0])

    assert stats.requests_per_window(60) == 5  # 10.0, 20.0, 59.9, 60.0, 61.0
    assert stats.requests_per_window(1) == 2  # 59.9, 60.0


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError):
        FakeConfig(rate_500=1.5)


def test_control_endpoints_configure_report_and_reset(server: FakeOpenAIServer, client: OpenAI) -> None:
    config = control(server, "POST", "/_control/config", {"rate_500": 1.0, "models": ["m1", MODEL]})
    assert config["models"] == ["gpt-4o-mini", "m1"]
    with pytest.raises(openai.InternalServerError):
        complete(client)

    stats = control(server, "GET", "/_control/stats?window=60")
    assert stats["errors_500"] == 1
    assert stats["requests_by_route"] == {"POST /v1/chat/completions": 1}
    assert stats["requests_per_window"] == 1

    control(server, "POST", "/_control/reset", {})
    assert control(server, "GET", "/_control/stats")["errors_500"] == 0


def test_subprocess_mode_prints_listening_and_stops_on_sigterm() -> None:
    command = [sys.executable, "-m", "synthtasks_fake_llm", "--port", "0", "--key", KEY, "--latency-ms", "1"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            readable, _, _ = select.select([process.stdout], [], [], 15)
            assert readable, "server did not announce itself"
            word, base_url = process.stdout.readline().split()
            assert word == "LISTENING"
            assert base_url.startswith("http://127.0.0.1:")
            with OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0, timeout=5) as sdk:
                assert complete(sdk).choices

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()


# --- structured output (response_format) -------------------------------------------

DRUG_PROMPT = "Write a discharge note mentioning aspirin taken daily"
ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "label": {"type": "string", "enum": ["DRUG", "FREQUENCY"]}},
                "required": ["text", "label"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["text", "entities"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "annotated_text", "schema": ENTITY_SCHEMA, "strict": True},
}


def structured(sdk: OpenAI, response_format: dict[str, Any], **overrides: Any) -> Any:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Reply with JSON: the text and its entities."},
        {"role": "user", "content": DRUG_PROMPT},
    ]
    return complete(sdk, messages=messages, response_format=response_format, **overrides)


def test_json_schema_reply_holds_the_text_and_the_lexicon_entities_found_in_the_prompt(
    server: FakeOpenAIServer, client: OpenAI
) -> None:
    server.configure(entity_lexicon={"aspirin": "DRUG", "daily": "FREQUENCY", "ibuprofen": "DRUG", "mg": "DOSE"})

    completion = structured(client, JSON_SCHEMA_FORMAT, n=2)

    for choice in completion.choices:
        reply = json.loads(choice.message.content)
        assert DRUG_PROMPT in reply["text"]
        # ibuprofen is not in the prompt; DOSE is not among the schema's labels.
        assert reply["entities"] == [{"text": "aspirin", "label": "DRUG"}, {"text": "daily", "label": "FREQUENCY"}]
    assert completion.usage.completion_tokens == sum(len(c.message.content.split()) for c in completion.choices)
    assert server.stats().structured_served == 2


def test_json_object_needs_the_word_json_in_the_messages_like_openai(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(entity_lexicon={"aspirin": "DRUG"})
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        complete(client, response_format={"type": "json_object"})

    reply = json.loads(structured(client, {"type": "json_object"}).choices[0].message.content)
    assert reply["entities"] == [{"text": "aspirin", "label": "DRUG"}]


def test_strict_schema_without_additional_properties_false_is_refused_like_openai(client: OpenAI) -> None:
    loose = {**ENTITY_SCHEMA, "additionalProperties": True}
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": loose, "strict": True}}

    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        structured(client, response_format)


def test_malformed_json_on_demand_for_the_next_reply_only(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(structured_fault="malformed_json", structured_fault_count=1)

    with pytest.raises(json.JSONDecodeError):
        json.loads(structured(client, JSON_SCHEMA_FORMAT).choices[0].message.content)
    assert json.loads(structured(client, JSON_SCHEMA_FORMAT).choices[0].message.content)["entities"] == []
    stats = server.stats()
    assert (stats.structured_served, stats.structured_faults) == (2, 1)


def test_wrong_shape_and_unlocatable_entity_on_demand(server: FakeOpenAIServer, client: OpenAI) -> None:
    server.configure(entity_lexicon={"aspirin": "DRUG"}, structured_fault="wrong_shape")
    assert set(json.loads(structured(client, JSON_SCHEMA_FORMAT).choices[0].message.content)) == {"content", "labels"}

    server.configure(structured_fault="unlocatable_entity")
    reply = json.loads(structured(client, JSON_SCHEMA_FORMAT).choices[0].message.content)
    surfaces = [entity["text"] for entity in reply["entities"]]
    assert surfaces[0] == "aspirin" and surfaces[0] in reply["text"]  # the located one is still there
    assert surfaces[1] not in reply["text"]


def test_unknown_structured_fault_is_rejected() -> None:
    with pytest.raises(ValueError, match="structured_fault"):
        FakeConfig(structured_fault="sometimes")
