"""How command lines become requests: global options anywhere, field masks built from
exactly the flags given, prompt variables, names, filters, import rules."""

from __future__ import annotations

import argparse
import io
import uuid

import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from synthtasks_cli import generate, names, providers, texts, tokens
from synthtasks_cli.errors import UsageError
from synthtasks_cli.parser import build_parser
from synthtasks_cli.texts import edited_tags


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_global_options_are_accepted_before_and_after_the_command():
    before = parse("--json", "--gateway", "h:1", "--token", "t", "--timeout", "5", "providers", "list")
    after = parse("providers", "list", "--json", "--gateway", "h:1", "--token", "t", "--timeout", "5")
    for args in (before, after):
        assert (args.json, args.gateway, args.token, args.timeout) == (True, "h:1", "t", 5.0)


def test_a_global_option_given_after_the_command_wins_over_one_given_before():
    args = parse("--gateway", "first:1", "jobs", "list", "demo", "--gateway", "second:2")
    assert args.gateway == "second:2"


def test_global_options_default_to_unset_so_the_environment_can_fill_them():
    args = parse("providers", "list")
    assert (args.json, args.gateway, args.token, args.timeout, args.tls_ca) == (False, None, None, None, None)


def test_abbreviated_flags_are_refused_so_new_flags_never_change_old_command_lines(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("providers", "create", "--kind", "openai", "--display", "x")
    assert exit_info.value.code == 2


def test_update_sends_a_field_mask_of_exactly_the_flags_given():
    args = parse(
        "providers", "update", "openai-prod", "--rpm", "60", "--display-name", "Prod", "--timeout-seconds", "2.5"
    )
    provider, mask = providers.update_from_args(args, api_key=None)
    assert provider.name == "providers/openai-prod"
    assert list(mask.paths) == ["display_name", "limits.requests_per_minute", "request_timeout"]
    assert provider.display_name == "Prod"
    assert provider.limits.requests_per_minute == 60
    assert provider.limits.tokens_per_minute == 0  # not in the mask: left alone by the server
    assert provider.request_timeout.ToMilliseconds() == 2500


def test_structured_output_is_set_on_create_and_masked_on_update():
    created = providers.provider_from_args(
        parse(
            "providers", "create", "--kind", "compatible", "--display-name", "L", "--structured-output", "json_schema"
        ),
        api_key=None,
    )
    assert created.structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
    provider, mask = providers.update_from_args(
        parse("providers", "update", "x", "--structured-output", "json_object"), api_key=None
    )
    assert list(mask.paths) == ["structured_output"]
    assert provider.structured_output == pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT


def test_update_with_a_new_key_masks_api_key_and_nothing_else():
    args = parse("providers", "update", "providers/x", "--api-key-env", "NEW_KEY")
    provider, mask = providers.update_from_args(args, api_key="sk-rotated")
    assert list(mask.paths) == ["api_key"]
    assert provider.api_key == "sk-rotated"


def test_update_can_clear_a_field_with_an_empty_value():
    provider, mask = providers.update_from_args(parse("providers", "update", "x", "--organization", ""), api_key=None)
    assert list(mask.paths) == ["organization"] and provider.organization == ""


def test_update_without_any_field_flag_is_a_usage_error():
    with pytest.raises(UsageError, match="nothing to update"):
        providers.update_from_args(parse("providers", "update", "x"), api_key=None)


def test_update_passes_the_etag_for_optimistic_concurrency():
    provider, _ = providers.update_from_args(
        parse("providers", "update", "x", "--model", "m", "--etag", "7"), api_key=None
    )
    assert provider.etag == "7"


def test_create_builds_an_azure_provider_with_limits():
    args = parse(
        "providers",
        "create",
        "--kind",
        "azure",
        "--display-name",
        "Azure EU",
        "--endpoint",
        "https://r.openai.azure.com",
        "--deployment",
        "gpt4o",
        "--api-version",
        "2024-06-01",
        "--rpm",
        "100",
        "--tpm",
        "50000",
        "--max-concurrent",
        "4",
        "--max-choices",
        "2",
    )
    provider = providers.provider_from_args(args, api_key="k")
    assert provider.kind == pb.PROVIDER_KIND_AZURE_OPENAI
    assert (provider.endpoint, provider.deployment, provider.api_version) == (
        "https://r.openai.azure.com",
        "gpt4o",
        "2024-06-01",
    )
    assert (
        provider.limits.requests_per_minute,
        provider.limits.tokens_per_minute,
        provider.limits.max_concurrent_requests,
    ) == (100, 50000, 4)
    assert provider.max_choices_per_request == 2
    assert provider.api_key == "k"
    assert not provider.HasField("request_timeout")


def test_kinds_other_than_the_three_are_refused_by_the_parser():
    with pytest.raises(SystemExit):
        parse("providers", "create", "--kind", "anthropic", "--display-name", "x")


def test_negative_limits_are_refused_by_the_parser():
    with pytest.raises(SystemExit):
        parse("providers", "create", "--kind", "openai", "--display-name", "x", "--rpm", "-1")


def test_api_key_and_api_key_env_are_mutually_exclusive():
    with pytest.raises(SystemExit):
        parse("providers", "create", "--kind", "openai", "--display-name", "x", "--api-key", "a", "--api-key-env", "B")


def test_the_api_key_is_read_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("MY_KEY", "  sk-from-env\n")
    args = parse("providers", "create", "--kind", "openai", "--display-name", "x", "--api-key-env", "MY_KEY")
    assert providers.read_api_key(args, prompt_if_missing=True) == "sk-from-env"


def test_a_missing_key_variable_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    args = parse("providers", "create", "--kind", "openai", "--display-name", "x", "--api-key-env", "NO_SUCH_KEY")
    with pytest.raises(UsageError, match="NO_SUCH_KEY is not set"):
        providers.read_api_key(args, prompt_if_missing=True)


def test_api_key_dash_reads_the_key_from_stdin():
    args = parse("providers", "create", "--kind", "openai", "--display-name", "x", "--api-key", "-")
    assert providers.read_api_key(args, prompt_if_missing=True, stdin=io.StringIO("sk-piped\n")) == "sk-piped"


def test_no_key_is_asked_for_when_stdin_is_not_a_terminal():
    args = parse("providers", "create", "--kind", "openai", "--display-name", "x")
    assert providers.read_api_key(args, prompt_if_missing=True, stdin=io.StringIO("")) is None


def test_generate_builds_the_job_with_variables_tags_and_seed(tmp_path):
    values = tmp_path / "sites.txt"
    values.write_text("liver\n\nkidney \n", encoding="utf-8")
    args = parse(
        "generate",
        "demo",
        "--prompt",
        "About {drug} in {site}",
        "--var",
        "drug=a, b,c",
        "--var-file",
        f"site={values}",
        "--count",
        "7",
        "--temperature",
        "0.3",
        "--tag",
        "x",
        "--tag",
        "y",
        "--seed",
        "42",
        "--provider",
        "p1",
        "--model",
        "m",
        "--max-output-tokens",
        "50",
        "--unique",
        "--system-prompt",
        "sys",
    )
    request = generate.build_request(args, generate.read_prompt(args))
    job = request.generation_job
    assert request.parent == "projects/demo"
    assert [(v.name, list(v.values)) for v in job.variables] == [
        ("drug", ["a", "b", "c"]),
        ("site", ["liver", "kidney"]),
    ]
    assert (job.text_count, job.temperature, list(job.tags), job.seed) == (7, 0.3, ["x", "y"], 42)
    assert (job.provider, job.model, job.max_output_tokens, job.unique, job.system_prompt) == (
        "providers/p1",
        "m",
        50,
        True,
        "sys",
    )


def test_generate_sends_a_fresh_request_id_unless_one_is_given():
    args = parse("generate", "demo", "--prompt", "p")
    first, second = generate.build_request(args, "p"), generate.build_request(args, "p")
    assert first.request_id != second.request_id
    uuid.UUID(first.request_id)
    given = parse("generate", "demo", "--prompt", "p", "--request-id", "retry-1")
    assert generate.build_request(given, "p").request_id == "retry-1"


def test_generate_asks_for_labels_and_binds_variables_to_them():
    args = parse(
        "generate",
        "demo",
        "--prompt",
        "p {drug}",
        "--var",
        "drug=aspirin",
        "--label",
        "DRUG=a medication",
        "--label",
        "DOSE",
        "--bind",
        "drug=DRUG",
    )
    job = generate.job_from_args(args, "p {drug}")
    assert [(label.name, label.description) for label in job.labels] == [("DRUG", "a medication"), ("DOSE", "")]
    assert dict(job.variable_labels) == {"drug": "DRUG"}
    with pytest.raises(SystemExit):
        parse("generate", "demo", "--prompt", "p", "--bind", "drug")


def test_generate_leaves_the_seed_unset_when_not_given():
    job = generate.job_from_args(parse("generate", "demo", "--prompt", "p"), "p")
    assert not job.HasField("seed")
    assert job.provider == ""  # the project's default provider


def test_a_variable_given_twice_is_a_usage_error():
    with pytest.raises(UsageError, match="given twice"):
        generate.job_from_args(parse("generate", "demo", "--prompt", "p", "--var", "d=a", "--var", "d=b"), "p")


@pytest.mark.parametrize("bad", ["drug", "=a,b", "drug=", "drug= , "])
def test_malformed_variables_are_refused_by_the_parser(bad):
    with pytest.raises(SystemExit):
        parse("generate", "demo", "--prompt", "p", "--var", bad)


def test_prompt_and_prompt_file_are_mutually_exclusive_and_one_is_required(tmp_path):
    with pytest.raises(SystemExit):
        parse("generate", "demo")
    with pytest.raises(SystemExit):
        parse("generate", "demo", "--prompt", "a", "--prompt-file", "b")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Write about {drug}.\n", encoding="utf-8")
    assert generate.read_prompt(parse("generate", "demo", "--prompt-file", str(prompt))) == "Write about {drug}."


def test_project_names_are_accepted_bare_or_full_and_checked():
    assert names.project("demo") == names.project("projects/demo") == "projects/demo"
    with pytest.raises(UsageError):
        names.project("Bad Project")


def test_child_names_take_a_full_name_or_an_id_with_a_project():
    full = "projects/demo/generationJobs/abc"
    assert names.child(full, "generationJobs", None) == full
    assert names.child("abc", "generationJobs", "demo") == full
    with pytest.raises(UsageError, match="--project"):
        names.child("abc", "generationJobs", None)
    with pytest.raises(UsageError):
        names.child("projects/demo/stagedTexts/abc", "generationJobs", None)


def test_text_filters_map_flags_to_the_filter_message():
    args = parse(
        "texts",
        "list",
        "demo",
        "--job",
        "j1",
        "--state",
        "staged",
        "--tag",
        "t",
        "--no-duplicate",
        "--query",
        "aspirin",
    )
    found = texts.filter_from_args(args, "projects/demo")
    assert found.generation_job == "projects/demo/generationJobs/j1"
    assert found.state == task_pb.STAGED_TEXT_STATE_STAGED
    assert (found.tag, found.query) == ("t", "aspirin")
    assert found.HasField("duplicate") and found.duplicate is False
    assert not texts.filter_from_args(parse("texts", "list", "demo"), "projects/demo").HasField("duplicate")


def test_import_takes_names_or_a_filter_but_not_both_and_not_neither():
    by_job = texts.import_request(parse("texts", "import", "demo", "--job", "j1"))
    assert by_job.filter.generation_job == "projects/demo/generationJobs/j1" and not by_job.names
    by_names = texts.import_request(parse("texts", "import", "demo", "t1", "projects/demo/stagedTexts/t2"))
    assert list(by_names.names) == ["projects/demo/stagedTexts/t1", "projects/demo/stagedTexts/t2"]
    with pytest.raises(UsageError, match="not both"):
        texts.import_request(parse("texts", "import", "demo", "t1", "--job", "j1"))
    with pytest.raises(UsageError, match="say what to import"):
        texts.import_request(parse("texts", "import", "demo"))
    with pytest.raises(UsageError, match="not in projects/demo"):
        texts.import_request(parse("texts", "import", "demo", "projects/other/stagedTexts/t1"))


def test_batch_commands_refuse_texts_of_several_projects():
    with pytest.raises(UsageError, match="one project"):
        texts.text_names(["projects/a/stagedTexts/1", "projects/b/stagedTexts/2"], None)


def test_tag_edits_keep_order_drop_removed_tags_and_never_duplicate():
    assert edited_tags(["a", "b", "c"], add=["d", "a"], remove=["b"]) == ["a", "c", "d"]
    assert edited_tags(["a"], add=["x"], remove=["x"]) == ["a"]


def test_token_roles_come_from_admin_or_projects():
    admin = tokens.token_from_args(parse("tokens", "create", "--admin", "--display-name", "ops"))
    assert (admin.role, list(admin.projects), admin.display_name) == (token_pb.TOKEN_ROLE_ADMIN, [], "ops")
    project = tokens.token_from_args(
        parse("tokens", "create", "--project", "b", "--project", "projects/a", "--project", "b")
    )
    assert (project.role, list(project.projects)) == (token_pb.TOKEN_ROLE_PROJECT, ["projects/a", "projects/b"])
    with pytest.raises(SystemExit):
        parse("tokens", "create", "--admin", "--project", "a")
    with pytest.raises(SystemExit):
        parse("tokens", "create")


def test_job_states_for_listing_match_the_proto_enum():
    from synthtasks_cli.jobs import STATES

    assert {gen_pb.GenerationJobState.Name(v) for v in STATES.values()} == {
        name
        for name in gen_pb.GenerationJobState.keys()  # noqa: SIM118 - an enum wrapper, not a dict: not iterable
        if not name.endswith("UNSPECIFIED")
    }
