"""The real `synthtasks` command, in a subprocess, against the running system: the
gateway, registry and task store of the suite's `stack`, one real worker process and
the fake OpenAI server as the provider."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import psycopg
import pytest

from tests.cli.conftest import Result, clean_environment, run_cli
from tests.leak_watch import register_secret
from tests.stack import running_workers


@pytest.fixture
def cli_env(stack, tmp_path: Path) -> dict[str, str]:
    return clean_environment(
        SYNTHTASKS_GATEWAY_ADDRESS=stack.gateway_address,
        SYNTHTASKS_TOKEN=stack.admin_token,
        SYNTHTASKS_STATE_DIR=str(tmp_path / "state"),
    )


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Callable[..., Result]:
    return lambda *args, **kwargs: run_cli(*args, env=kwargs.pop("env", cli_env), **kwargs)


@pytest.fixture(scope="module")
def worker(stack, suite_log) -> Iterator[None]:
    with running_workers(stack, suite_log.folder, count=1):
        yield


@pytest.fixture
def provider(cli, fake_llm, unique) -> str:
    """A provider on the fake LLM; returns its name."""
    created = cli(
        "providers",
        "create",
        "--kind",
        "compatible",
        "--display-name",
        unique("cli fake"),
        "--endpoint",
        fake_llm.openai_base_url,
        "--model",
        "gpt-4o-mini",
        "--json",
    ).ok()
    return created.json()["provider"]["name"]


def test_providers_can_be_created_listed_updated_validated_and_deleted(cli, cli_env, fake_llm, unique):
    key = register_secret("sk-cli-" + unique("key"))
    env = {**cli_env, "CLI_TEST_KEY": key}
    display_name = unique("cli provider")
    created = cli(
        "providers",
        "create",
        "--kind",
        "compatible",
        "--display-name",
        display_name,
        "--endpoint",
        fake_llm.openai_base_url,
        "--model",
        "gpt-4o-mini",
        "--api-key-env",
        "CLI_TEST_KEY",
        "--rpm",
        "120",
        "--validate-first",
        "--json",
        env=env,
    ).ok()
    provider = created.json()["provider"]
    name = provider["name"]
    assert provider["display_name"] == display_name
    assert provider["limits"]["requests_per_minute"] == 120
    assert created.json()["validation"]["state"] == "VALIDATION_STATE_VALID"
    assert provider["key_hint"] and key not in created.stdout + created.stderr

    listed = cli("providers", "list", "--json").ok()
    assert name in [p["name"] for p in listed.json()["providers"]]
    assert key not in listed.stdout

    shown = cli("providers", "get", name.removeprefix("providers/")).ok()
    assert display_name in shown.stdout and "OPENAI_COMPATIBLE" in shown.stdout

    updated = cli("providers", "update", name, "--tpm", "5000", "--json").ok().json()["provider"]
    assert updated["limits"]["tokens_per_minute"] == 5000
    assert updated["limits"]["requests_per_minute"] == 120  # not in the mask, kept

    validated = cli("providers", "validate", name).ok()
    assert f"{name}: VALID" in validated.stdout

    deleted = cli("providers", "delete", name).ok()
    assert deleted.stdout.strip() == f"Deleted {name}"
    gone = cli("providers", "get", name)
    assert gone.code == 1 and gone.stderr.startswith("error: NOT_FOUND")


def test_invalid_input_is_one_line_naming_the_field(cli, unique):
    result = cli(
        "providers",
        "create",
        "--kind",
        "compatible",
        "--display-name",
        unique("bad"),
        "--endpoint",
        "notaurl",
        "--model",
        "m",
    )
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == "error: INVALID_ARGUMENT provider.endpoint: must be an http(s) URL with a host\n"


def test_testing_unsaved_credentials_reports_the_outcome_and_exits_1_unless_valid(cli, fake_llm):
    good = cli(
        "providers", "test", "--kind", "compatible", "--endpoint", fake_llm.openai_base_url, "--model", "gpt-4o-mini"
    ).ok()
    assert good.stdout.startswith("connection: VALID")
    missing = cli(
        "providers", "test", "--kind", "compatible", "--endpoint", fake_llm.openai_base_url, "--model", "no-such-model"
    )
    assert missing.code == 1 and missing.stdout.startswith("connection: MODEL_NOT_FOUND")


def test_a_provider_assigned_to_a_project_is_deleted_only_with_force(cli, provider, unique):
    project = unique("cli-proj")
    assigned = cli("projects", "assign", project, provider, "--default").ok()
    assert assigned.stdout.strip() == f"Assigned {provider} to projects/{project} as its default"
    listed = cli("projects", "providers", project, "--json").ok().json()
    assert [(p["provider"]["name"], p["default"]) for p in listed["project_providers"]] == [(provider, True)]

    refused = cli("providers", "delete", provider)
    assert refused.code == 1
    assert refused.stderr.startswith("error: FAILED_PRECONDITION ") and refused.stderr.count("\n") == 1
    cli("providers", "delete", provider, "--force").ok()
    assert cli("projects", "providers", project, "--json").ok().json().get("project_providers", []) == []


def test_unassign_removes_the_provider_from_the_project(cli, provider, unique):
    project = unique("cli-proj")
    cli("projects", "assign", project, provider).ok()
    cli("projects", "unassign", project, provider).ok()
    assert "No providers are assigned" in cli("projects", "providers", project).ok().stdout


def test_a_project_token_made_by_the_cli_acts_only_in_its_project(cli, cli_env, provider, unique):
    project = unique("cli-proj")
    cli("projects", "assign", project, provider).ok()
    created = cli("tokens", "create", "--project", project, "--display-name", "cli test", "--json").ok().json()
    secret, token_name = created["secret"], created["token"]["name"]
    as_project = {**cli_env, "SYNTHTASKS_TOKEN": secret}

    mine = cli("projects", "providers", project, "--json", env=as_project).ok().json()
    assert [p["provider"]["name"] for p in mine["project_providers"]] == [provider]
    denied = cli("providers", "list", env=as_project)
    assert denied.code == 1 and denied.stderr.startswith("error: PERMISSION_DENIED")

    assert token_name in [t["name"] for t in cli("tokens", "list", "--json").ok().json()["tokens"]]
    assert secret not in cli("tokens", "list").ok().stdout
    cli("tokens", "delete", token_name).ok()
    # (The gateway caches identities briefly, so the secret itself may work a few more seconds.)
    assert token_name not in [t["name"] for t in cli("tokens", "list", "--json").ok().json()["tokens"]]


def test_whoami_prints_the_tokens_role_and_the_projects_it_may_act_in(cli, cli_env, unique):
    first, second = sorted([unique("cli-who"), unique("cli-who")])
    created = cli(
        "tokens", "create", "--project", second, "--project", first, "--display-name", "two projects", "--json"
    ).ok()
    token = created.json()["token"]
    as_project = {**cli_env, "SYNTHTASKS_TOKEN": created.json()["secret"]}

    shown = cli("whoami", env=as_project).ok().stdout
    assert f"{token['name']} (two projects)" in shown
    assert "Role:     PROJECT" in shown
    assert f"Projects: projects/{first}, projects/{second}" in shown
    scripted = cli("whoami", "--json", env=as_project).ok().json()
    assert scripted["role"] == "TOKEN_ROLE_PROJECT" and not scripted["all_projects"]
    assert scripted["projects"] == [f"projects/{first}", f"projects/{second}"]
    assert scripted["known_projects"] == []

    # The admin may act anywhere and is offered the projects the registry knows, this
    # token's among them.
    admin = cli("whoami").ok().stdout
    assert "Role:     ADMIN" in admin and "Projects: every project" in admin
    assert f"projects/{first}" in cli("whoami", "--json").ok().json()["known_projects"]

    refused = cli("whoami", env={**cli_env, "SYNTHTASKS_TOKEN": "st_never-issued"})
    assert refused.code == 1 and refused.stderr.startswith("error: UNAUTHENTICATED ")


def test_without_a_token_the_error_says_how_to_get_one(cli, cli_env, tmp_path):
    env = {k: v for k, v in cli_env.items() if k != "SYNTHTASKS_TOKEN"}
    result = cli("providers", "list", env=env)
    assert result.code == 1
    assert result.stderr.startswith("error: UNAUTHENTICATED ") and "synthtasks stack up" in result.stderr


def test_generate_review_import_and_export_a_job(cli, worker, provider, unique, tmp_path):
    project = unique("cli-gen")
    cli("projects", "assign", project, provider, "--default").ok()

    generated = cli(
        "generate",
        project,
        "--prompt",
        "Write a sentence about {drug}.",
        "--var",
        "drug=aspirin,ibuprofen,naproxen",
        "--count",
        "6",
        "--tag",
        "cli",
        "--temperature",
        "0.5",
        "--wait",
        timeout=180,
    ).ok()
    assert "SUCCEEDED: 6 of 6 texts produced" in generated.stdout
    jobs = cli("jobs", "list", project, "--json").ok().json()["generation_jobs"]
    assert len(jobs) == 1 and jobs[0]["state"] == "GENERATION_JOB_STATE_SUCCEEDED"
    job = jobs[0]["name"]
    job_id = job.rsplit("/", 1)[1]
    assert (
        cli("jobs", "get", job_id, "--project", project, "--json").ok().json()["generation_job"]["counts"]["produced"]
        == 6
    )

    staged = cli("texts", "list", project, "--job", job_id, "--all", "--json").ok().json()["staged_texts"]
    assert len(staged) == 6 and all("cli" in t["tags"] for t in staged)
    assert sorted({t["lineage"]["variables"]["drug"] for t in staged}) == ["aspirin", "ibuprofen", "naproxen"]

    first, second = staged[0]["name"], staged[1]["name"]
    edited = (
        cli("texts", "edit", first, "--text", "An edited [sentence].", "--add-tag", "reviewed", "--json")
        .ok()
        .json()["staged_text"]
    )
    assert edited["text"] == "An edited [sentence]." and edited["tags"] == ["cli", "reviewed"]
    assert edited["original_text"] == staged[0]["text"]
    untagged = cli("texts", "edit", first, "--remove-tag", "reviewed", "--json").ok().json()["staged_text"]
    assert untagged["tags"] == ["cli"] and untagged["text"] == "An edited [sentence]."
    shown = cli("texts", "get", first).ok()
    assert "An edited [sentence]." in shown.stdout  # brackets are text, not rich markup

    cli("texts", "discard", second).ok()
    assert (
        cli("texts", "list", project, "--state", "discarded", "--json").ok().json()["staged_texts"][0]["name"] == second
    )
    cli("texts", "restore", second.rsplit("/", 1)[1], "--project", project).ok()

    imported = cli("texts", "import", project, "--job", job_id).ok()
    assert imported.stdout.startswith(f"Imported 6 text(s) as tasks into projects/{project}")
    again = cli("texts", "import", project, "--job", job_id, "--json").ok().json()
    assert again.get("created_count", 0) == 0

    tasks = cli("tasks", "list", project, "--job", job_id, "--all", "--json").ok().json()["tasks"]
    assert len(tasks) == 6 and all("synthetic" in t["tags"] for t in tasks)
    tagged = cli("tasks", "tag", "add", tasks[0]["name"], "gold", "--json").ok().json()["task"]
    assert "gold" in tagged["tags"] and "synthetic" in tagged["tags"]
    cli("tasks", "tag", "remove", tasks[0]["name"], "gold").ok()
    assert cli("tasks", "get", tasks[0]["name"], "--json").ok().json()["task"]["tags"].count("gold") == 0
    assert len(cli("tasks", "list", project, "--tag", "gold", "--json").ok().json().get("tasks", [])) == 0

    out = tmp_path / "texts.csv"
    exported = cli("texts", "export", project, "--job", job_id, "--out", str(out)).ok()
    assert exported.stdout.startswith("Exported ") and str(out) in exported.stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 6 and "An edited [sentence]." in {row["text"] for row in rows}
    assert not out.with_name(out.name + ".part").exists()

    jsonl = tmp_path / "texts.jsonl"
    cli("texts", "export", project, "--job", job_id, "--format", "jsonl", "--out", str(jsonl)).ok()
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 6

    studio = tmp_path / "tasks.label-studio.json"
    cli(
        "tasks",
        "export",
        project,
        "--job",
        job_id,
        "--format",
        "label-studio",
        "--from-name",
        "ner",
        "--out",
        str(studio),
    ).ok()
    exported_tasks = json.loads(studio.read_text(encoding="utf-8"))
    assert len(exported_tasks) == 6
    assert all(t["meta"]["synthetic"] is True and "synthetic" in t["meta"]["tags"] for t in exported_tasks)
    assert "An edited [sentence]." in {t["data"]["text"] for t in exported_tasks}
    verbatim = tmp_path / "tasks.csv"
    cli("tasks", "export", project, "--no-formula-guard", "--out", str(verbatim)).ok()
    task_rows = list(csv.DictReader(io.StringIO(verbatim.read_text(encoding="utf-8-sig"))))
    assert len(task_rows) == 6 and all(row["synthetic"] == "true" for row in task_rows)


def test_labeling_config_matches_the_label_studio_export():
    printed = run_cli(
        "labeling-config", "--labels", "DRUG, DOSE,FREQUENCY", "--from-name", "ner", env=clean_environment()
    ).ok()
    view = ElementTree.fromstring(printed.stdout)
    (labels,) = view.findall("Labels")
    (text,) = view.findall("Text")
    assert (labels.get("name"), labels.get("toName"), text.get("name"), text.get("value")) == (
        "ner",
        "text",
        "text",
        "$text",
    )
    assert [label.get("value") for label in labels.findall("Label")] == ["DRUG", "DOSE", "FREQUENCY"]


def test_a_job_can_be_cancelled_and_watching_it_exits_1(cli, worker, provider, unique):
    project = unique("cli-cancel")
    cli("projects", "assign", project, provider, "--default").ok()
    # One request a minute: the job cannot end before the cancel, however slow this machine.
    cli("providers", "update", provider, "--rpm", "1").ok()
    job = cli("generate", project, "--prompt", "slow", "--count", "50", "--json").ok().json()["generation_job"]["name"]
    cancelled = cli("jobs", "cancel", job).ok()
    assert cancelled.stdout.strip() == f"{job}: CANCELLED"
    watched = cli("jobs", "watch", job, timeout=60)
    assert watched.code == 1 and "CANCELLED" in watched.stdout


def test_the_same_request_id_returns_the_same_job(cli, provider, unique):
    project = unique("cli-idem")
    cli("projects", "assign", project, provider, "--default").ok()
    first = cli("generate", project, "--prompt", "p", "--count", "1", "--request-id", "retry-me", "--json").ok().json()
    second = cli("generate", project, "--prompt", "p", "--count", "1", "--request-id", "retry-me", "--json").ok().json()
    assert first["generation_job"]["name"] == second["generation_job"]["name"]


def test_following_a_job_that_makes_no_progress_gives_up_after_the_stall_timeout(
    cli, worker, provider, fake_llm, unique
):
    project = unique("cli-stall")
    cli("projects", "assign", project, provider, "--default").ok()
    fake_llm.configure(latency_ms=30_000)  # every call hangs: the job cannot move
    stalled = cli("generate", project, "--prompt", "p", "--count", "2", "--wait", "--stall-timeout", "3", timeout=60)
    assert stalled.code == 1
    assert stalled.stderr.count("\n") == 1
    assert "made no progress for 3 s" in stalled.stderr
    job = stalled.stderr.split("error: ", 1)[1].split(" ", 1)[0]
    fake_llm.configure(latency_ms=0)
    cli("jobs", "cancel", job).ok()


def test_a_job_without_progress_for_the_stall_threshold_is_shown_stalled(cli, stack, provider, fake_llm, unique):
    project = unique("cli-still")
    cli("projects", "assign", project, provider, "--default").ok()
    fake_llm.configure(latency_ms=30_000)  # should a worker run, every call hangs: the job cannot move
    job = cli("generate", project, "--prompt", "p", "--count", "2", "--json").ok().json()["generation_job"]["name"]
    job_id = job.rsplit("/", 1)[1]
    try:
        fresh = cli("jobs", "get", job_id, "--project", project).ok().stdout
        assert "stalled" not in fresh and "last progress" not in fresh
        # The suite's gateway reports a job stalled after a day without progress: move
        # the job's last change two days back rather than wait.
        with psycopg.connect(stack.task_store_settings.database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE generation_jobs SET update_time = update_time - interval '2 days' WHERE id = %s", (job_id,)
            )
        shown = cli("jobs", "get", job_id, "--project", project).ok().stdout
        assert ", stalled" in shown and "last progress" in shown
        assert cli("jobs", "get", job_id, "--project", project, "--json").ok().json()["generation_job"]["stalled"]
        assert ", stalled" in cli("jobs", "list", project).ok().stdout
    finally:
        fake_llm.configure(latency_ms=0)
        cli("jobs", "cancel", job).ok()
