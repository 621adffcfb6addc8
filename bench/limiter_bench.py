"""Shared limiter benchmark: what the limiter lets through, measured instead of asserted
(the tests check only that limits hold).

    python bench/limiter_bench.py [--processes 2] [--limit 5] [--tasks 20] [--seconds 2]

Runs --processes copies of tests/generator_worker/limiter_hammer.py in concurrency mode
against one scope (each coroutine holds a slot ~5.5 ms) and prints the grants per process,
the total grants per second next to the ideal (limit / 5.5 ms), and whether the limit was
ever exceeded. Then runs the requests-per-window mode (10 per 1 s window, 3.5 s) and
prints how much of the budget of its 4 windows was used.

Needs Redis (SYNTHTASKS_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0); uses a
throwaway namespace. The machine's other load moves these figures."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
HOLD_SECONDS = 0.0055  # limiter_hammer holds a slot 1-10 ms


def hammer(redis_url: str, namespace: str, scope: str, mode: str, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            *("-m", "tests.generator_worker.limiter_hammer", mode),
            *("--redis", redis_url, "--namespace", namespace, "--scope", scope),
            *options,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"the hammer failed: {out}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    redis_url = os.environ.get("SYNTHTASKS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    namespace = f"synthtasks-bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        options = ("--limit", str(args.limit), "--tasks", str(args.tasks), "--seconds", str(args.seconds))
        running = [
            hammer(redis_url, namespace, "providers/bench", "concurrency", *options) for _ in range(args.processes)
        ]
        granted = [result(process)["granted"] for process in running]
        over = int(client.get(f"{namespace}:probe:over") or 0)
        ideal = args.limit / HOLD_SECONDS
        print(f"concurrency limit {args.limit}, {args.processes} processes x {args.tasks} tasks, {args.seconds} s")
        print(f"  grants per process      {granted}")
        print(f"  grants per second       {sum(granted) / args.seconds:8.0f}   (ideal ~{ideal:.0f})")
        print(f"  moments over the limit  {over}")

        window = ("--limit", "10", "--window", "1", "--margin", "0", "--tasks", "8", "--seconds", "3.5")
        running = [hammer(redis_url, namespace, "providers/bench-rpm", "rpm", *window) for _ in range(2)]
        total = sum(result(process)["granted"] for process in running)
        print("requests per window: 10 per 1 s window for 3.5 s (4 windows), 2 processes")
        print(f"  granted                 {total} of 40")
    finally:
        for key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(key)
        client.close()


if __name__ == "__main__":
    main()
