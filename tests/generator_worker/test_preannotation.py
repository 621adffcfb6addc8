"""Pre-annotated jobs end to end: the real gateway, task store and registry, a real
`synthtasks-worker` process, the real openai SDK asking the fake provider for structured
output (synthtasks_fake_llm/structured.py)."""

from __future__ import annotations

import itertools

import grpc
import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from synthtasks_cli import jobs
from synthtasks_fake_llm.structured import UNLOCATABLE_SURFACE
from tests.cli.conftest import clean_environment, run_cli
from tests.jobs_harness import Generation, log_dir_for, started_workers
from tests.rich_status import field_violations

PROMPT = "Write a note about {drug} taken {frequency}"
VARIABLES = [
    gen_pb.PromptVariable(name="drug", values=["aspirin", "ibuprofen", "naproxen"]),
    gen_pb.PromptVariable(name="frequency", values=["daily", "weekly"]),
]
LABELS = [gen_pb.EntityLabel(name="DRUG", description="a medication"), gen_pb.EntityLabel(name="FREQUENCY")]
# naproxen is missing on purpose: the model "forgets" it and the binding must add it.
LEXICON = {"aspirin": "DRUG", "ibuprofen": "DRUG", "daily": "FREQUENCY"}


@pytest.fixture(scope="module", autouse=True)
def workers(stack, suite_log, request):
    with started_workers(stack, log_dir_for(suite_log, request), count=1) as running:
        yield running


def start(generation: Generation, project: str, text_count: int) -> gen_pb.GenerationJob:
    return generation.start(
        project,
        text_count,
        prompt=PROMPT,
        variables=VARIABLES,
        labels=LABELS,
        variable_labels={"drug": "DRUG"},
    )


@pytest.mark.parametrize("kind", ["openai", "compatible"])  # JSON schema, JSON mode (the kinds' defaults)
def test_every_stored_span_covers_its_text_and_bound_values_are_always_marked(
    generation: Generation, kind: str
) -> None:
    generation.fake.configure(entity_lexicon=LEXICON)
    project = generation.new_project()
    generation.provider(project, kind, max_choices=2)

    job = generation.wait(start(generation, project, 12).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert (job.counts.produced, job.counts.failed, job.counts.dropped_spans) == (12, 0, 0)
    texts = generation.staged(job)
    assert len(texts) == 12
    for text in texts:
        assert text.spans, "every text mentions its drug"
        for span in text.spans:
            assert text.text[span.start : span.end] == span.text
        drugs = [span.text for span in text.spans if span.label == "DRUG"]
        assert drugs == [text.lineage.variables["drug"]]  # naproxen too, though the model left it out
        frequencies = [span.text for span in text.spans if span.label == "FREQUENCY"]
        assert frequencies == (["daily"] if text.lineage.variables["frequency"] == "daily" else [])
    assert generation.fake.stats().structured_served == 12
    assert job.usage.completion_tokens == sum(t.lineage.completion_tokens for t in texts)


def test_entities_not_in_the_text_are_dropped_and_counted(generation: Generation) -> None:
    generation.fake.configure(entity_lexicon=LEXICON, structured_fault="unlocatable_entity")
    project = generation.new_project()
    generation.provider(project)

    job = generation.wait(start(generation, project, 4).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert job.counts.dropped_spans == 4  # one per text
    texts = generation.staged(job)
    assert all(span.text != UNLOCATABLE_SURFACE for text in texts for span in text.spans)
    # The control: the located entities of the same replies were kept.
    assert all(text.text[s.start : s.end] == s.text for text in texts for s in text.spans)
    assert sum(len(text.spans) for text in texts) >= 4


def test_a_malformed_reply_is_repaired_once(generation: Generation) -> None:
    generation.fake.configure(entity_lexicon=LEXICON, structured_fault="malformed_json", structured_fault_count=1)
    project = generation.new_project()
    generation.provider(project)

    job = generation.wait(start(generation, project, 1).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    stats = generation.fake.stats()
    assert (stats.structured_served, stats.structured_faults) == (2, 1)
    (text,) = generation.staged(job)
    assert [span.text for span in text.spans if span.label == "DRUG"] == ["aspirin"]
    # The repair's tokens are the text's too: its request repeats the first one's
    # messages, so the prompt tokens more than double those of the same text unrepaired.
    generation.fake.configure(structured_fault=None)
    clean = generation.wait(start(generation, project, 1).name)
    assert clean.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    assert job.usage.prompt_tokens == text.lineage.prompt_tokens > 2 * clean.usage.prompt_tokens > 0
    assert job.usage.completion_tokens > clean.usage.completion_tokens


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_shape"])
def test_structured_output_still_bad_after_the_repair_fails_the_slot_with_the_reason(
    generation: Generation, fault: str
) -> None:
    generation.fake.configure(entity_lexicon=LEXICON, structured_fault=fault)
    project = generation.new_project()
    generation.provider(project, max_choices=2)

    job = generation.wait(start(generation, project, 3).name)

    assert job.state == gen_pb.GENERATION_JOB_STATE_FAILED
    assert (job.counts.produced, job.counts.failed) == (0, 3)
    assert job.error.reason == gen_pb.FAILURE_REASON_BAD_STRUCTURED_OUTPUT
    assert "after 1 repair request" in job.error.message
    # Two requests of two choices and one, then one repair per slot.
    assert generation.fake.stats().structured_served == 6
    assert job.usage.completion_tokens > 0  # billed, though no text came of it


# --- entity balance ------------------------------------------------------------------


def balance(generation: Generation, scope: str) -> gen_pb.EntityBalance:
    return generation.clients.generation.GetEntityBalance(
        gen_pb.GetEntityBalanceRequest(scope=scope), timeout=10
    ).entity_balance


def expected_balance(texts: list[task_pb.StagedText]) -> tuple[dict, dict]:
    """(label -> (texts, spans), (variable, value) -> (texts, spans)) counted here from the spans."""
    labels: dict[str, list[int]] = {"DRUG": [0, 0], "FREQUENCY": [0, 0]}
    values = {(v.name, value): [0, 0] for v in VARIABLES for value in v.values}
    for text in texts:
        for label in {span.label for span in text.spans}:
            labels[label][0] += 1
        for span in text.spans:
            labels[span.label][1] += 1
        for variable, value in text.lineage.variables.items():
            values[(variable, value)][0] += 1
            bound = {"drug": "DRUG"}.get(variable)
            values[(variable, value)][1] += sum(
                1 for span in text.spans if span.text == value and (bound is None or span.label == bound)
            )
    return {k: tuple(v) for k, v in labels.items()}, {k: tuple(v) for k, v in values.items()}


def counted(entity_balance: gen_pb.EntityBalance) -> tuple[dict, dict]:
    return (
        {item.label: (item.texts, item.spans) for item in entity_balance.labels},
        {(item.variable, item.value): (item.texts, item.spans) for item in entity_balance.variable_values},
    )


def test_entity_balance_counts_match_the_stored_spans_per_job_and_per_project(generation: Generation) -> None:
    generation.fake.configure(entity_lexicon=LEXICON, structured_fault="unlocatable_entity")
    project = generation.new_project()
    generation.provider(project, max_choices=3)
    first = generation.wait(start(generation, project, 7).name)
    second = generation.wait(start(generation, project, 5).name)
    first_texts, second_texts = generation.staged(first), generation.staged(second)

    of_first = balance(generation, first.name)
    assert (of_first.scope, of_first.texts, of_first.dropped_spans) == (first.name, 7, 7)
    assert of_first.spans == sum(len(t.spans) for t in first_texts) > 0
    assert counted(of_first) == expected_balance(first_texts)
    # Every declared value is listed, used or not; naproxen is marked though the model never returns it.
    labels_of = {(item.variable, item.value): list(item.labels) for item in of_first.variable_values}
    assert labels_of[("drug", "naproxen")] == ["DRUG"] and labels_of[("frequency", "weekly")] == []
    assert counted(of_first)[1][("drug", "naproxen")][1] == counted(of_first)[1][("drug", "naproxen")][0] > 0

    of_project = balance(generation, f"projects/{project}")
    assert (of_project.texts, of_project.dropped_spans) == (12, 12)
    assert counted(of_project) == expected_balance(first_texts + second_texts)

    # Discarded texts leave the balance; the control is that the counts above held them.
    generation.clients.tasks.DiscardStagedTexts(
        task_pb.DiscardStagedTextsRequest(parent=f"projects/{project}", names=[first_texts[0].name]), timeout=10
    )
    after = balance(generation, first.name)
    assert after.texts == 6
    assert counted(after) == expected_balance(first_texts[1:])


def test_the_watch_of_a_labelled_job_ends_with_the_balance_get_entity_balance_counts(
    generation: Generation, stack, tmp_path
) -> None:
    generation.fake.configure(entity_lexicon=LEXICON, structured_fault="unlocatable_entity")
    project = generation.new_project()
    generation.provider(project, max_choices=2)
    job = start(generation, project, 10)

    # Opened right after the start: texts already written are counted by the watch's
    # first query, the others one by one as their events arrive; both ways must agree.
    events = list(
        generation.clients.generation.WatchGenerationJob(gen_pb.WatchGenerationJobRequest(name=job.name), timeout=60)
    )

    last = events[-1]
    assert last.generation_job.state == gen_pb.GENERATION_JOB_STATE_SUCCEEDED
    exact = balance(generation, job.name)
    assert (exact.texts, exact.dropped_spans) == (10, 10) and exact.spans > 0
    assert last.entity_balance == exact
    assert counted(last.entity_balance) == expected_balance(generation.staged(last.generation_job))
    # Every event of the job carries the balance, each new text counted in its own event.
    assert all(event.HasField("entity_balance") for event in events)
    for before, after in itertools.pairwise(events):
        assert after.entity_balance.texts == before.entity_balance.texts + after.HasField("staged_text")

    env = clean_environment(
        SYNTHTASKS_GATEWAY_ADDRESS=stack.gateway_address,
        SYNTHTASKS_TOKEN=stack.admin_token,
        SYNTHTASKS_STATE_DIR=str(tmp_path / "state"),
    )
    shown = run_cli("jobs", "watch", job.name, env=env).ok().stdout
    per_label = " · ".join(f"{item.label} {item.texts} texts/{item.spans} spans" for item in exact.labels)
    assert f"entity balance: {per_label}; 10 dropped" in shown


def test_entity_balance_of_an_unknown_job_is_not_found_and_a_bad_scope_names_the_field(
    generation: Generation,
) -> None:
    project = generation.new_project()
    generation.provider(project)
    with pytest.raises(grpc.RpcError) as missing:
        balance(generation, f"projects/{project}/generationJobs/{'0' * 32}")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    for scope in ("", "projects/", f"projects/{project}/tasks/x", f"projects/{project}/generationJobs/"):
        with pytest.raises(grpc.RpcError) as bad:
            balance(generation, scope)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(bad.value)] == ["scope"]

    empty = balance(generation, f"projects/{project}")
    assert (empty.texts, empty.spans, list(empty.labels), list(empty.variable_values)) == (0, 0, [], [])


def test_the_cli_shows_the_balance_as_tables_with_bars(generation: Generation, stack, tmp_path) -> None:
    generation.fake.configure(entity_lexicon=LEXICON)
    project = generation.new_project()
    generation.provider(project)
    job = generation.wait(start(generation, project, 6).name)
    env = clean_environment(
        SYNTHTASKS_GATEWAY_ADDRESS=stack.gateway_address,
        SYNTHTASKS_TOKEN=stack.admin_token,
        SYNTHTASKS_STATE_DIR=str(tmp_path / "state"),
    )

    shown = run_cli("jobs", "balance", job.name, env=env).ok().stdout
    as_json = run_cli("jobs", "balance", "--project", project, "--json", env=env).ok().json()["entity_balance"]

    assert "6 texts" in shown and "0 dropped" in shown
    rows = {line.split("│")[1].strip(): line for line in shown.splitlines() if line.count("│") >= 4}
    assert "█" in rows["DRUG"] and "█" in rows["FREQUENCY"]
    assert as_json["texts"] == 6
    assert {item["label"]: int(item["spans"]) for item in as_json["labels"]} == {
        item.label: item.spans for item in balance(generation, job.name).labels
    }


def test_a_bar_is_scaled_to_the_largest_count_and_a_rare_one_still_shows():
    assert jobs.bar(100, 100) == "█" * jobs.BAR_WIDTH
    assert jobs.bar(1, 1000) == "█"
    assert jobs.bar(0, 1000) == ""
