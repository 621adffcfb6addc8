"""Recovery benchmark: how long a running job whose queue is lost (a Redis restart without
persistence) takes to move again, with the gateway's default stalled-job settings.

    python bench/recovery_bench.py [--texts 400] [--latency-ms 200] [--concurrency 4]

One worker process with one thread and one message ready, so that most of the job's
slot ranges wait in the backlog and the queue; a provider of --latency-ms latency
allowing --concurrency calls at once. Once the job has produced some texts, every Redis
key of the system's namespace is deleted. Prints the seconds from the loss to the job's
last progress (what the worker still held), to its first progress after that (the
gateway's sweeper enqueued it again), and to its end, and checks that it produced
exactly --texts texts. The bound with the defaults: 60 s without progress + at most one
15 s check interval after the last progress.

The whole system runs as in bench/generation_bench.py (services as processes, the fake
provider as a subprocess, throwaway databases and Redis namespace)."""

from __future__ import annotations

import argparse
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


def run(args: argparse.Namespace) -> None:
    import redis
    from synthtasks.v1 import generation_service_pb2 as gen_pb

    workdir = Path(tempfile.mkdtemp(prefix="synthtasks-recovery-bench-"))
    print(f"logs: {workdir}")
    fake = FakeProvider(workdir, args.latency_ms)
    system = System(workdir, args.postgres_url, args.redis_url)
    try:
        system.start()
        api = Api(f"127.0.0.1:{system.ports['gateway']}", system.admin_token)
        project = f"bench-recovery-{uuid.uuid4().hex[:6]}"
        provider = api.provider(project, fake.base_url, concurrency=args.concurrency)
        workers = system.workers(1, SYNTHTASKS_WORKER_THREADS="1", SYNTHTASKS_WORKER_QUEUE_READY_MESSAGES="1")
        client = redis.Redis.from_url(args.redis_url)
        try:
            name = api.create(project, args.texts, provider).name

            def get() -> gen_pb.GenerationJob:
                request = gen_pb.GetGenerationJobRequest(name=name)
                return api.generation.GetGenerationJob(request, timeout=10).generation_job

            while get().counts.produced == 0:
                time.sleep(0.05)
            keys = list(client.scan_iter(match=f"{system.namespace}:*", count=1000))
            client.delete(*keys)
            lost = time.perf_counter()
            print(f"deleted {len(keys)} Redis keys with {get().counts.produced} of {args.texts} texts produced")
            produced, last_progress, resumed, silent_since, stalled_seen = -1, lost, None, lost, None
            while (job := get()).state not in TERMINAL:
                now = time.perf_counter()
                if job.stalled and stalled_seen is None:
                    stalled_seen = now
                if job.counts.produced != produced:
                    if produced >= 0 and resumed is None and now - last_progress > 10:
                        # The first text after a silence: the sweeper enqueued the job again.
                        resumed, silent_since = now, last_progress
                    produced, last_progress = job.counts.produced, now
                time.sleep(0.2)
            ended = time.perf_counter()
        finally:
            workers.stop()
            client.close()
        texts = job.counts.produced
        print(
            f"state {gen_pb.GenerationJobState.Name(job.state)}, {texts} texts produced (exactly {args.texts}: "
            f"{'yes' if texts == args.texts else 'NO'})"
        )
        print(f"reported stalled: {'%.1f s after the loss' % (stalled_seen - lost) if stalled_seen else 'never seen'}")
        if resumed is None:
            print("no silence of more than 10 s: the worker held the whole job")
        else:
            print(
                f"last progress {silent_since - lost:.1f} s after the loss (what the worker held), first progress"
                f" again {resumed - lost:.1f} s after the loss: {resumed - silent_since:.1f} s without progress"
            )
        print(f"job ended {ended - lost:.1f} s after the loss")
    finally:
        system.close()
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SYNTHTASKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("SYNTHTASKS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
