"""Pre-annotated jobs end to end: the real gateway, task store and registry, a real
`synthtasks-worker` process, the real openai SDK asking the fake provider for structured
output (synthtasks_fake_llm/structured.py)."""

from __future__ import annotations

import pytest
from synthtasks.v1 import generation_service_pb2 as gen_pb

from synthtasks_fake_llm.structured import UNLOCATABLE_SURFACE
from tests.jobs_harness import Generation, log_dir_for, started_workers

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
    # The repair's tokens are the text's too.
    assert job.usage.prompt_tokens == text.lineage.prompt_tokens > 0


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
