"""Fairness benchmark: how long a small job of one project waits behind a large backlog
of another.

    python bench/fairness_bench.py [--jobs 300] [--latency-ms 1000] [--concurrency 16]
                                   [--processes 2]

Project A submits --jobs one-text jobs (8 clients at once), then project B submits one
one-text job; both projects share one provider of --latency-ms latency that allows
--concurrency calls in flight, and --processes worker processes (default settings) serve
them. Prints the seconds from B's CreateGenerationJob to its end, next to the figure the
same scenario gave before the fair backlog (first in, first out across projects), and
how many of A's jobs were still unfinished when B's ended.

The whole system runs as in bench/generation_bench.py (services as processes, the fake
provider as a subprocess, throwaway databases and Redis namespace). The machine's other
load moves the figure: compare figures of the same run."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script: make `bench`, `services` and `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from bench.generation_bench import TERMINAL, Api, FakeProvider, System  # noqa: E402

# Measured with this benchmark's defaults on the code before the fair backlog (commit
# 8e14db8, first in, first out across projects), on the shared 2-core development machine.
FIFO_SECONDS_BY_JOBS = {300: 18.4, 2000: 117.7}


def assign(api: Api, project: str, provider: str) -> None:
    from synthtasks.v1 import provider_service_pb2 as pb

    api.providers.AssignProvider(
        pb.AssignProviderRequest(project=f"projects/{project}", provider=provider, default=True), timeout=10
    )


def state(api: Api, job: str) -> int:
    from synthtasks.v1 import generation_service_pb2 as gen_pb

    return api.generation.GetGenerationJob(gen_pb.GetGenerationJobRequest(name=job), timeout=10).generation_job.state


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="synthtasks-fairness-bench-"))
    print(f"logs: {workdir}")
    print(
        f"machine: {os.cpu_count()} CPUs; provider latency {args.latency_ms:g} ms, concurrency {args.concurrency}; "
        f"{args.processes} worker processes; project A: {args.jobs} one-text jobs, then project B: one"
    )
    fake = FakeProvider(workdir, args.latency_ms)
    system = System(workdir, args.postgres_url, args.redis_url)
    # Project A's jobs would exceed the default project quotas (jobs running, created per minute).
    system.env.update(
        {"SYNTHTASKS_TASK_STORE_QUOTA_JOBS_RUNNING": "0", "SYNTHTASKS_TASK_STORE_QUOTA_JOBS_CREATED_PER_MINUTE": "0"}
    )
    try:
        system.start()
        api = Api(f"127.0.0.1:{system.ports['gateway']}", system.admin_token)
        project_a, project_b = (f"bench-{name}-{uuid.uuid4().hex[:6]}" for name in "ab")
        provider = api.provider(project_a, fake.base_url, concurrency=args.concurrency)
        assign(api, project_b, provider)
        workers = system.workers(args.processes)
        try:
            api.wait(api.create(project_a, 1, provider).name)  # warm-up: connections, credentials
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                a_jobs = list(pool.map(lambda _: api.create(project_a, 1, provider).name, range(args.jobs)))
            submitted = time.perf_counter() - started
            b_started = time.perf_counter()
            b_job = api.wait(api.create(project_b, 1, provider).name, poll=0.05)
            b_seconds = time.perf_counter() - b_started
            a_unfinished = sum(state(api, name) not in TERMINAL for name in a_jobs)
            for name in a_jobs:
                api.wait(name)
            drained = time.perf_counter() - started
        finally:
            workers.stop()
        assert b_job.state == 3, b_job
        print(f"A's {args.jobs} jobs submitted in {submitted:.1f} s; all of A's done {drained:.1f} s after the first")
        before = FIFO_SECONDS_BY_JOBS.get(args.jobs)
        print(
            f"B's one-text job ended {b_seconds:.1f} s after it was submitted (target <= 10 s: "
            f"{'met' if b_seconds <= 10 else 'MISSED'}); {a_unfinished} of A's jobs were still unfinished then"
        )
        print(
            "before the fair backlog (first in, first out): "
            + (f"{before:.1f} s" if before is not None else "not measured for this --jobs")
        )
    finally:
        system.close()
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="one-text jobs project A submits first")
    parser.add_argument("--latency-ms", type=float, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SYNTHTASKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("SYNTHTASKS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
