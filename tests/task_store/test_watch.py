"""WatchGenerationJob: snapshot, one event per text in write order, snapshots on other
changes, and the end right after the terminal state."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import grpc
import pytest
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.runtime.database import create_pool
from services.task_store.repository.entity_balance import EntityBalanceRepository
from services.task_store.repository.jobs import JobRepository
from services.task_store.watch import JobEventHub, WatchEvent, follow_job
from tests.task_store.builders import append, create_job, fails_with, failure, text

RUNNING = generation_pb2.GENERATION_JOB_STATE_RUNNING


def watch(generation, name: str):
    return generation.WatchGenerationJob(generation_pb2.WatchGenerationJobRequest(name=name), timeout=20)


def test_a_watch_sends_the_snapshot_then_each_text_in_order_and_ends_after_the_terminal_state(
    generation, jobs, project
):
    job = create_job(jobs, project, text_count=4)
    stream = watch(generation, job.name)
    snapshot = next(stream)

    append(jobs, job.name, text(0, "first"), text(1, "second"))
    first, second = next(stream), next(stream)
    append(jobs, job.name, failure(2))
    after_failure = next(stream)
    append(jobs, job.name, text(3, "last"))
    rest = list(stream)

    assert snapshot.generation_job.state == generation_pb2.GENERATION_JOB_STATE_QUEUED
    assert not snapshot.HasField("staged_text")
    assert [first.staged_text.text, second.staged_text.text] == ["first", "second"]
    assert first.generation_job.state == RUNNING and second.generation_job.counts.produced == 2
    assert not after_failure.HasField("staged_text") and after_failure.generation_job.counts.failed == 1
    assert [event.staged_text.text for event in rest] == ["last", ""]
    assert rest[0].generation_job.state == RUNNING, "only the last event may report the end"
    assert rest[-1].generation_job.state == generation_pb2.GENERATION_JOB_STATE_FAILED
    assert rest[-1].generation_job.counts == generation_pb2.JobCounts(requested=4, produced=3, failed=1)
    assert stream.code() == grpc.StatusCode.OK
    assert second.HasField("since_previous")


def test_watching_a_finished_job_sends_one_snapshot_and_ends(generation, jobs, project):
    job = create_job(jobs, project, text_count=1)
    append(jobs, job.name, text(0, "done"))

    events = list(watch(generation, job.name))

    assert [event.generation_job.state for event in events] == [generation_pb2.GENERATION_JOB_STATE_SUCCEEDED]


def test_a_watch_reports_a_cancellation_and_ends(generation, jobs, project):
    job = create_job(jobs, project, text_count=3)
    stream = watch(generation, job.name)
    next(stream)

    generation.CancelGenerationJob(generation_pb2.CancelGenerationJobRequest(name=job.name))

    assert [event.generation_job.state for event in stream] == [generation_pb2.GENERATION_JOB_STATE_CANCELLED]


def test_a_new_text_wakes_a_watcher_through_the_notification_not_the_safety_net(jobs, settings, task_store, project):
    """The watch of the service, with its safety net an hour away: the text can only
    arrive through the notification. The bounds below only say that it arrived at all."""
    job = create_job(jobs, project, text_count=2)
    hub = JobEventHub(settings.database_url)
    hub.start()
    pool = create_pool(settings.database_url, min_size=1, max_size=2)
    active = threading.Event()
    active.set()
    stop_hooks: list[Callable[[], None]] = []
    events: queue.Queue[WatchEvent] = queue.Queue()

    def follow() -> None:
        for event in follow_job(
            JobRepository(pool),
            EntityBalanceRepository(pool),
            hub,
            project,
            job.name.rsplit("/", 1)[1],
            is_active=active.is_set,
            on_stop=stop_hooks.append,
            safety_net_seconds=3600,
        ):
            events.put(event)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        assert events.get(timeout=30).text is None, "first the snapshot"
        append(jobs, job.name, text(0, "quick"))
        event = events.get(timeout=30)
        assert event.text is not None and event.text.text == "quick"
    finally:
        active.clear()
        for ring in stop_hooks:
            ring()
        follower.join(timeout=10)
        hub.close()
        pool.close()
    assert not follower.is_alive()


def test_a_watch_the_client_cancels_ends(generation, jobs, project):
    job = create_job(jobs, project, text_count=2)
    stream = watch(generation, job.name)
    next(stream)

    stream.cancel()

    with pytest.raises(grpc.RpcError):
        next(stream)
    assert stream.code() == grpc.StatusCode.CANCELLED


def test_watching_an_unknown_job_is_not_found(generation, project):
    with fails_with(grpc.StatusCode.NOT_FOUND):
        next(watch(generation, f"projects/{project}/generationJobs/{'0' * 32}"))


def test_a_labelled_job_s_events_carry_its_balance_counted_once_then_advanced_text_by_text(generation, jobs, project):
    labels = [generation_pb2.EntityLabel(name="DRUG"), generation_pb2.EntityLabel(name="DOSE")]
    job = create_job(
        jobs,
        project,
        text_count=3,
        prompt="A note about {drug}.",
        variables=[generation_pb2.PromptVariable(name="drug", values=["aspirin", "ibuprofen"])],
        labels=labels,
        variable_labels={"drug": "DRUG"},
    )
    drug = task_pb2.Span(start=0, end=7, label="DRUG", text="aspirin")
    dose = task_pb2.Span(start=8, end=12, label="DOSE", text="5 mg")
    # Written before the watch: counted by the query at its start.
    append(jobs, job.name, text(0, "aspirin 5 mg", variables={"drug": "aspirin"}, spans=[drug, dose], dropped_spans=1))
    unlabelled = create_job(jobs, project, text_count=1)
    append(jobs, unlabelled.name, text(0, "aspirin 5 mg", variables={"city": "Oslo"}))
    stream = watch(generation, job.name)
    snapshot = next(stream)

    # Written during the watch: added from the events.
    append(jobs, job.name, text(1, "ibuprofen only", variables={"drug": "ibuprofen"}))
    append(jobs, job.name, text(2, "aspirin", variables={"drug": "aspirin"}, spans=[drug], dropped_spans=2))
    events = [snapshot, *stream]
    plain = list(watch(generation, unlabelled.name))

    assert [(event.entity_balance.texts, event.entity_balance.spans) for event in events] == [
        (1, 2),
        (2, 2),
        (3, 3),
        (3, 3),
    ]
    final = events[-1]
    assert final.generation_job.state == generation_pb2.GENERATION_JOB_STATE_SUCCEEDED
    exact = generation.GetEntityBalance(generation_pb2.GetEntityBalanceRequest(scope=job.name)).entity_balance
    assert final.entity_balance == exact
    assert {item.label: (item.texts, item.spans) for item in exact.labels} == {"DOSE": (1, 1), "DRUG": (2, 2)}
    assert exact.dropped_spans == 3
    # A job without labels has no balance to show; the events above show that one is sent.
    assert plain and not any(event.HasField("entity_balance") for event in plain)


def test_the_balance_a_watch_starts_from_counts_the_texts_up_to_its_snapshot_only(jobs, db, settings, project):
    """A text written between the watch's snapshot and its balance query reaches the
    watch as an event: the query must leave it out, or the watch would count it twice."""
    job = create_job(jobs, project, text_count=3, labels=[generation_pb2.EntityLabel(name="DRUG")])
    drug = task_pb2.Span(start=0, end=7, label="DRUG", text="aspirin")
    append(jobs, job.name, text(0, "aspirin first", spans=[drug]))
    append(jobs, job.name, text(1, "aspirin later", spans=[drug]))
    job_id = job.name.rsplit("/", 1)[1]
    seqs = [row[0] for row in db.execute("SELECT seq FROM staged_texts WHERE job_id = %s ORDER BY seq", (job_id,))]
    pool = create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        balances = EntityBalanceRepository(pool)
        through_first = balances.entity_balance(project, job_id, through_seq=seqs[0])
        every = balances.entity_balance(project, job_id)
    finally:
        pool.close()

    assert (every.texts, every.spans) == (2, 2), "both texts count without the bound"
    assert (through_first.texts, through_first.spans) == (1, 1)
    assert [(item.label, item.texts) for item in through_first.labels] == [("DRUG", 1)]
