"""The fair backlog against the suite's real Redis: the dispatch script's order (round
robin over projects and over the jobs of a project, weighted by slots), its atomic move,
its low-water mark, cancelled jobs, and the contract with Dramatiq (what the backlog
moves, a real dramatiq Worker consumes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq import Message, Worker

from services.generation_queue.backlog import Backlog, FairDispatch, project_of
from services.generation_queue.broker import create_broker
from services.generation_queue.hand_back import hand_back
from services.generation_queue.messages import ACTOR_NAME, QUEUE_NAME, SlotRange, slot_ranges
from services.generation_queue.stop_flags import granted_calls_key, mark_job_stopped
from tests.infrastructure import Infrastructure

WORKER = "worker-broker-id"


@pytest.fixture
def namespace(redis_namespace: str, request: pytest.FixtureRequest) -> str:
    return f"{redis_namespace}-{request.node.name[:40]}"


@pytest.fixture
def client(infra: Infrastructure) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(infra.redis_url)
    yield connection
    connection.close()


@pytest.fixture
def backlog(client: redis.Redis, namespace: str) -> Backlog:
    return Backlog(client, namespace)


def job(project: str, name: str) -> str:
    return f"projects/{project}/generationJobs/{name}"


def queued(client: redis.Redis, backlog: Backlog) -> list[tuple[str, int]]:
    """(job, first_slot) of every message in the Dramatiq queue, in queue order."""
    ids = client.lrange(backlog.queue_key, 0, -1)
    bodies = client.hmget(f"{backlog.queue_key}.msgs", ids) if ids else []
    ranges = [SlotRange.from_dict(Message.decode(body).args[0]) for body in bodies]
    return [(r.job, r.first_slot) for r in ranges]


def pop_queue(client: redis.Redis, backlog: Backlog, count: int) -> None:
    """What a worker's fetch does to the queue list."""
    for _ in range(count):
        assert client.lpop(backlog.queue_key) is not None


def test_a_job_name_gives_its_project_and_anything_else_is_refused() -> None:
    assert project_of("projects/p-1/generationJobs/j") == "p-1"
    for bad in ["", "projects/p", "projects//generationJobs/j", "providers/p/generationJobs/j", "projects/p/x/j"]:
        with pytest.raises(ValueError):
            project_of(bad)


def test_nothing_enters_the_queue_while_no_worker_is_there_to_take_it(client: redis.Redis, backlog: Backlog) -> None:
    assert backlog.enqueue_job(slot_ranges(job("a", "j"), 48, 16)) == 0

    assert (backlog.size(), backlog.queue_length()) == (3, 0)
    # Positive control: a worker's dispatch moves them.
    assert backlog.dispatch(broker_id=WORKER, ready=10) == 3
    assert (backlog.size(), backlog.queue_length()) == (0, 3)
    assert queued(client, backlog) == [(job("a", "j"), 0), (job("a", "j"), 16), (job("a", "j"), 32)]


def test_projects_take_turns_in_the_order_they_arrived(client: redis.Redis, backlog: Backlog) -> None:
    for index in range(5):
        backlog.enqueue_job(slot_ranges(job("z", f"j{index}"), 1))
    backlog.enqueue_job(slot_ranges(job("b", "j0"), 2, 1))
    backlog.enqueue_job(slot_ranges(job("m", "j0"), 1))

    assert backlog.dispatch(broker_id=WORKER, ready=100) == 8

    projects = [project_of(name) for name, _ in queued(client, backlog)]
    assert projects == ["z", "b", "m", "z", "b", "z", "z", "z"]


def test_a_project_that_arrives_later_is_served_within_the_round(client: redis.Redis, backlog: Backlog) -> None:
    for project in ("a", "b", "c"):
        backlog.enqueue_job(slot_ranges(job(project, "j"), 10, 1))
    backlog.dispatch(broker_id=WORKER, ready=4)  # a b c a: "a" has had two turns
    backlog.enqueue_job(slot_ranges(job("late", "j"), 10, 1))

    backlog.dispatch(broker_id=WORKER, ready=8)

    projects = [project_of(name) for name, _ in queued(client, backlog)]
    assert projects == ["a", "b", "c", "a", "b", "c", "late", "a"]


def test_the_jobs_of_one_project_take_turns_in_the_order_they_were_submitted(
    client: redis.Redis, backlog: Backlog
) -> None:
    big, small, one = job("p", "z-big"), job("p", "m-small"), job("p", "a-one")
    backlog.enqueue_job(slot_ranges(big, 48, 16))
    backlog.enqueue_job(slot_ranges(small, 32, 16))
    backlog.enqueue_job(slot_ranges(one, 16, 16))

    backlog.dispatch(broker_id=WORKER, ready=100)

    assert queued(client, backlog) == [(big, 0), (small, 0), (one, 0), (big, 16), (small, 16), (big, 32)]


def test_turns_are_weighted_by_slots_so_projects_share_provider_calls_evenly(
    client: redis.Redis, backlog: Backlog
) -> None:
    backlog.enqueue_job(slot_ranges(job("big", "j"), 64, 16))  # 4 ranges of 16 slots
    for index in range(40):
        backlog.enqueue_job(slot_ranges(job("small", f"j{index}"), 1))  # 40 ranges of 1 slot

    backlog.dispatch(broker_id=WORKER, ready=34)

    projects = [project_of(name) for name, _ in queued(client, backlog)]
    # One 16-slot range of "big" is worth 16 one-slot ranges of "small".
    assert projects == ["big"] + ["small"] * 16 + ["big"] + ["small"] * 16


def test_the_queue_is_filled_only_up_to_what_the_live_workers_want_ready(
    infra: Infrastructure, client: redis.Redis, namespace: str
) -> None:
    backlog = Backlog(client, namespace, heartbeat_timeout_ms=1_000)
    backlog.enqueue_job(slot_ranges(job("a", "j"), 500, 1))
    worker = create_broker(infra.redis_url, namespace=namespace)
    worker.do_qsize(QUEUE_NAME)  # a Dramatiq command: the worker's heartbeat

    assert backlog.dispatch(broker_id=worker.broker_id, ready=4) == 4
    assert backlog.dispatch() == 0  # the mark holds for everyone: the queue is full
    pop_queue(client, backlog, 3)  # the worker fetched three
    assert backlog.dispatch() == 3  # the gateway refills for the live worker
    assert (backlog.queue_length(), backlog.size()) == (4, 493)

    # A second live worker raises the mark by its own figure.
    other = create_broker(infra.redis_url, namespace=namespace)
    other.do_qsize(QUEUE_NAME)
    assert backlog.dispatch(broker_id=other.broker_id, ready=2) == 2
    worker.close()
    other.close()

    # Both silent for longer than the heartbeat timeout: dead, no longer counted.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pop_queue(client, backlog, backlog.queue_length())
        if backlog.dispatch() == 0:
            break
        time.sleep(0.05)
    assert backlog.queue_length() == 0 and backlog.size() > 0
    assert not client.exists(f"{backlog.key}.workers")


def test_a_worker_that_stops_is_no_longer_counted(client: redis.Redis, backlog: Backlog) -> None:
    backlog.enqueue_job(slot_ranges(job("a", "j"), 5, 1))
    assert backlog.dispatch(broker_id=WORKER, ready=2) == 2
    pop_queue(client, backlog, 2)

    backlog.forget_worker(WORKER)

    assert backlog.dispatch() == 0
    assert backlog.dispatch(broker_id=WORKER, ready=2) == 2  # positive control: registered again


def test_every_range_is_either_waiting_or_queued_whatever_runs_at_once(client: redis.Redis, backlog: Backlog) -> None:
    jobs = [job(f"p{index % 4}", f"j{index}") for index in range(20)]
    expected = {(name, r.first_slot) for name in jobs for r in slot_ranges(name, 160, 16)}
    errors: list[BaseException] = []

    def enqueue(names: list[str]) -> None:
        try:
            for name in names:
                backlog.enqueue_job(slot_ranges(name, 160, 16))
        except BaseException as error:  # noqa: BLE001 - reported by the test thread below
            errors.append(error)

    def dispatch() -> None:
        try:
            for _ in range(50):
                backlog.dispatch(broker_id=WORKER, ready=1_000)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread below
            errors.append(error)

    threads = [threading.Thread(target=enqueue, args=(jobs[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=dispatch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    backlog.dispatch(broker_id=WORKER, ready=1_000)

    assert not errors
    in_queue = queued(client, backlog)
    assert len(in_queue) == len(expected) == 200
    assert set(in_queue) == expected
    assert backlog.size() == 0
    assert not client.exists(f"{backlog.key}.projects")


def test_the_ranges_of_a_stopped_job_are_skipped_and_forgotten(
    client: redis.Redis, backlog: Backlog, namespace: str
) -> None:
    stopped, running = job("a", "stopped"), job("b", "running")
    backlog.enqueue_job(slot_ranges(stopped, 64, 16))
    backlog.enqueue_job(slot_ranges(running, 32, 16))
    mark_job_stopped(client, namespace, stopped)

    assert backlog.dispatch(broker_id=WORKER, ready=100) == 2

    assert queued(client, backlog) == [(running, 0), (running, 16)]
    assert backlog.size() == 0
    assert not client.exists(f"{backlog.key}.ranges:{stopped}")


def test_dropping_a_job_forgets_its_waiting_ranges_and_keeps_the_others(client: redis.Redis, backlog: Backlog) -> None:
    cancelled, other, elsewhere = job("a", "cancelled"), job("a", "other"), job("b", "j")
    backlog.enqueue_job(slot_ranges(cancelled, 64, 16))
    backlog.enqueue_job(slot_ranges(other, 16, 16))
    backlog.enqueue_job(slot_ranges(elsewhere, 16, 16))

    assert backlog.drop_job(cancelled) == 4
    assert backlog.drop_job(cancelled) == 0

    assert backlog.size() == 2
    backlog.dispatch(broker_id=WORKER, ready=100)
    assert sorted(queued(client, backlog)) == [(other, 0), (elsewhere, 0)]
    assert not client.exists(f"{backlog.key}.projects")


def test_a_job_enqueued_again_is_sent_again(client: redis.Redis, backlog: Backlog) -> None:
    """Only ranges still waiting in the backlog are refused: once dispatched they may have
    been lost, and whoever enqueues again (recover_job checks first) means it."""
    name = job("a", "j")
    backlog.enqueue_job(slot_ranges(name, 32, 16))
    backlog.dispatch(broker_id=WORKER, ready=100)
    backlog.enqueue_job(slot_ranges(name, 32, 16))
    backlog.dispatch(broker_id=WORKER, ready=100)

    assert queued(client, backlog) == [(name, 0), (name, 16), (name, 0), (name, 16)]


def test_a_job_enqueued_again_while_its_ranges_wait_gets_no_second_copy(client: redis.Redis, backlog: Backlog) -> None:
    name = job("a", "j")
    backlog.enqueue_job(slot_ranges(name, 40, 16))
    backlog.enqueue_job(slot_ranges(name, 40, 16))
    assert backlog.size() == 3

    backlog.dispatch(broker_id=WORKER, ready=100)
    assert queued(client, backlog) == [(name, 0), (name, 16), (name, 32)]
    assert not client.exists(f"{backlog.key}.held:{name}"), "forgotten with the job's last waiting range"


def test_a_job_is_recovered_only_when_none_of_its_work_is_left(
    infra: Infrastructure, client: redis.Redis, backlog: Backlog, namespace: str
) -> None:
    """Each place where a job's work may be - the backlog, the queue (waiting or fetched by
    a worker), the delay queue, a live granted call - keeps it from being enqueued again."""
    name = job("a", "j")
    ranges = slot_ranges(name, 40, 16)
    assert backlog.recover_job(ranges), "nothing of it anywhere: enqueued"
    assert backlog.size() == 3

    assert not backlog.recover_job(ranges), "waiting in the backlog"
    assert backlog.size() == 3

    backlog.dispatch(broker_id=WORKER, ready=100)
    assert backlog.size() == 0
    assert not backlog.recover_job(ranges), "waiting in the queue"
    pop_queue(client, backlog, 3)  # fetched by a worker: the bodies stay until acked
    assert not backlog.recover_job(ranges), "held by a worker"

    client.delete(f"{backlog.queue_key}.msgs")
    broker = create_broker(infra.redis_url, namespace=namespace)
    broker.declare_queue(QUEUE_NAME)
    hand_back(broker, name, [3], delay_ms=60_000)
    assert not backlog.recover_job(ranges), "waiting in the delay queue"

    client.delete(f"{backlog.queue_key}.DQ.msgs")
    calls = granted_calls_key(namespace, name)
    now_ms = int(client.time()[0]) * 1000
    client.zadd(calls, {"call": now_ms + 5_000})
    assert not backlog.recover_job(ranges), "a live granted call"
    client.zadd(calls, {"call": now_ms - 1_000})
    assert backlog.recover_job(ranges), "a call past its send-by time is no work"
    assert backlog.size() == 3
    broker.close()


def test_ranges_of_several_jobs_in_one_call_are_refused(backlog: Backlog) -> None:
    with pytest.raises(ValueError):
        backlog.enqueue_job([SlotRange(job("a", "j1"), 0, 1), SlotRange(job("a", "j2"), 0, 1)])
    assert backlog.size() == 0


def test_what_the_backlog_moves_a_dramatiq_worker_consumes(
    infra: Infrastructure, client: redis.Redis, namespace: str
) -> None:
    """The contract with dramatiq's Redis layout: messages the script writes are fetched,
    decoded, processed and acked by a real Worker; its FairDispatch middleware keeps the
    queue filled until the backlog is empty, and its prefetch low."""
    worker_side = create_broker(infra.redis_url, namespace=namespace)
    worker_side.add_middleware(FairDispatch(ready_messages=1, interval_seconds=0.2))
    received: list[dict] = []

    @dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=worker_side, max_retries=0)
    def record(slot_range: dict) -> None:
        received.append(slot_range)

    backlog = Backlog(client, namespace)
    ranges = [r for index in range(6) for r in slot_ranges(job(f"p{index % 3}", f"j{index}"), 40, 16)]
    for index in range(6):
        backlog.enqueue_job(ranges[index * 3 : index * 3 + 3])
    assert backlog.size() == 18  # no worker yet: everything waits in the backlog

    worker = Worker(worker_side, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        # Few messages wait inside the process: 2 threads + 1 (Dramatiq's own: 2 x 2).
        assert worker.consumers[QUEUE_NAME].prefetch == 3
        assert Worker(create_broker(infra.redis_url, namespace=namespace), worker_threads=2).queue_prefetch == 4
        deadline = time.monotonic() + 20
        while len(received) < len(ranges) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Every message was acked: nothing left in the queue or its message hash.
        while client.hlen(f"{backlog.queue_key}.msgs") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()

    assert sorted(received, key=lambda r: (r["job"], r["first_slot"])) == sorted(
        (r.to_dict() for r in ranges), key=lambda r: (r["job"], r["first_slot"])
    )
    assert (backlog.size(), backlog.queue_length(), client.hlen(f"{backlog.queue_key}.msgs")) == (0, 0, 0)


def test_a_worker_wants_one_ready_message_per_idle_thread_and_a_few_more(
    infra: Infrastructure, client: redis.Redis, namespace: str
) -> None:
    """An idle worker fills all its threads in one dispatch; a busy one keeps only
    `ready_messages` waiting (what waits inside a process is served first come, first
    served)."""
    worker_side = create_broker(infra.redis_url, namespace=namespace)
    dispatch = FairDispatch(ready_messages=2, interval_seconds=60)
    worker_side.add_middleware(dispatch)
    dramatiq.actor(lambda slot_range: None, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=worker_side)
    backlog = Backlog(client, namespace)
    backlog.enqueue_job(slot_ranges(job("p", "j"), 16 * 20, 16))
    worker = Worker(worker_side, worker_threads=6, worker_timeout=50)
    # Not started: its threads would take the messages; the hooks are what count here.
    dispatch.before_worker_boot(worker_side, worker)
    dispatch.after_worker_boot(worker_side, worker)
    try:
        messages = [
            dramatiq.MessageProxy(Message(QUEUE_NAME, ACTOR_NAME, (), {}, {}, message_id=f"m{index}"))
            for index in range(4)
        ]
        assert dispatch.wanted_ready() == 8  # 6 idle threads + 2, the prefetch
        deadline = time.monotonic() + 10
        while backlog.queue_length() < 8 and time.monotonic() < deadline:
            time.sleep(0.01)  # the dispatch at boot, from the middleware's own thread
        assert backlog.queue_length() == 8, "an idle worker's first dispatch fills every thread"
        # The consumer fetches 4 and hands them to the threads through the work queue.
        pop_queue(client, backlog, 4)
        for index, message in enumerate(messages):
            worker.work_queue.put((index, message))  # only its size counts here
        for message in messages:
            worker.work_queue.get()
            dispatch.before_process_message(worker_side, message)
        assert dispatch.wanted_ready() == 4  # 2 idle threads + 2
        assert backlog.queue_length() == 4, "a busy worker keeps only what it wants waiting"
        dispatch.after_process_message(worker_side, messages[0])
        dispatch.after_skip_message(worker_side, messages[1])
        # An after-hook without its before-hook (an earlier middleware refused the message).
        dispatch.after_process_message(worker_side, dramatiq.MessageProxy(Message(QUEUE_NAME, ACTOR_NAME, (), {}, {})))
        assert dispatch.wanted_ready() == 6
        assert backlog.queue_length() == 6
    finally:
        dispatch.before_worker_shutdown(worker_side, worker)
