"""Pre-annotation benchmark: what asking for entities costs, in tokens and in texts/s.

    python bench/preannotation_bench.py [--texts 1000] [--latency-ms 100] [--concurrency 64]
                                        [--processes 1] [--repeat 3]

Runs jobs of --texts texts with the same prompt and variables ({drug} x {frequency})
without labels, then with labels (DRUG, FREQUENCY, {drug} bound to DRUG) once per
structured-output mode (JSON schema, JSON mode), alternating, on one provider each, and
prints per mode:

- texts/s (median of --repeat runs) next to the ideal concurrency / latency and to the
  same run's job without labels: the provider's latency is the same, so the target is
  >= 90 % of the unlabelled figure;
- tokens per text (prompt, completion) and the extra over the unlabelled job: the
  annotation instructions in the prompt, the JSON and entities in the completion. The
  fake provider counts words, not tokens, so read the extra as a ratio, not in dollars;
- CPU seconds per 1,000 texts of the synthtasks processes (the parsing and locating
  happen in the worker).

The whole system runs as in bench/generation_bench.py (services as processes, the fake
provider as a subprocess, throwaway databases and Redis namespace). The machine's other
load moves the figures: compare figures of the same run."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script: make `bench`, `services` and `tests` importable
    sys.path.insert(0, str(REPO_ROOT))

from bench.generation_bench import Api, FakeProvider, System  # noqa: E402

PROMPT = "Write a short clinical note about a patient taking {drug} {frequency}."
DRUGS = ["aspirin", "ibuprofen", "naproxen", "metformin", "warfarin", "atorvastatin"]
FREQUENCIES = ["daily", "weekly", "twice a day"]
# Most values are in the fake's lexicon; naproxen is left out so that binding adds it.
LEXICON = {value: "DRUG" for value in DRUGS if value != "naproxen"} | dict.fromkeys(FREQUENCIES, "FREQUENCY")


def provider(api: Api, project: str, base_url: str, concurrency: int, mode: int) -> str:
    from synthtasks.v1 import provider_service_pb2 as pb

    created = api.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=pb.Provider(
                display_name=f"bench-{uuid.uuid4().hex[:6]}",
                kind=pb.PROVIDER_KIND_OPENAI,
                endpoint=base_url + "/v1",
                model="gpt-4o-mini",
                api_key="sk-bench-" + uuid.uuid4().hex,
                max_choices_per_request=1,
                limits=pb.ProviderLimits(max_concurrent_requests=concurrency),
                structured_output=mode,
            )
        ),
        timeout=10,
    ).provider
    api.providers.AssignProvider(pb.AssignProviderRequest(project=f"projects/{project}", provider=created.name))
    return created.name


def create(api: Api, project: str, texts: int, provider_name: str, *, labelled: bool):
    from synthtasks.v1 import generation_service_pb2 as gen_pb

    job = gen_pb.GenerationJob(
        prompt=PROMPT,
        text_count=texts,
        provider=provider_name,
        variables=[
            gen_pb.PromptVariable(name="drug", values=DRUGS),
            gen_pb.PromptVariable(name="frequency", values=FREQUENCIES),
        ],
    )
    if labelled:
        job.labels.extend(
            [
                gen_pb.EntityLabel(name="DRUG", description="a medication"),
                gen_pb.EntityLabel(name="FREQUENCY", description="how often it is taken"),
            ]
        )
        job.variable_labels["drug"] = "DRUG"
    return api.generation.CreateGenerationJob(
        gen_pb.CreateGenerationJobRequest(
            parent=f"projects/{project}", request_id=uuid.uuid4().hex, generation_job=job
        ),
        timeout=10,
    ).generation_job


def measure(api: Api, system: System, project: str, texts: int, provider_name: str, *, labelled: bool) -> dict:
    cpu_before = system.synthtasks_cpu()
    started = time.perf_counter()
    job = api.wait(create(api, project, texts, provider_name, labelled=labelled).name, poll=0.1)
    elapsed = time.perf_counter() - started
    cpu_after = system.synthtasks_cpu()
    assert job.state == 3 and job.counts.produced == texts, job
    cpu = sum(cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after)
    return {
        "rate": texts / elapsed,
        "prompt": job.usage.prompt_tokens / texts,
        "completion": job.usage.completion_tokens / texts,
        "cpu_per_1k": cpu / texts * 1000,
        "dropped": job.counts.dropped_spans,
    }


def run(args: argparse.Namespace) -> None:
    from synthtasks.v1 import provider_service_pb2 as pb

    workdir = Path(tempfile.mkdtemp(prefix="synthtasks-preannotation-bench-"))
    print(f"logs: {workdir}")
    print(
        f"machine: {os.cpu_count()} CPUs; provider latency {args.latency_ms:g} ms, concurrency {args.concurrency}; "
        f"{args.processes} worker process(es); {args.texts} texts per job; median of {args.repeat} runs"
    )
    fake = FakeProvider(workdir, args.latency_ms)
    system = System(workdir, args.postgres_url, args.redis_url)
    try:
        system.start()
        fake.configure(entity_lexicon=LEXICON)
        api = Api(f"127.0.0.1:{system.ports['gateway']}", system.admin_token)
        project = f"bench-{uuid.uuid4().hex[:8]}"
        modes = {
            "json_schema": provider(
                api, project, fake.base_url, args.concurrency, pb.STRUCTURED_OUTPUT_MODE_JSON_SCHEMA
            ),
            "json_object": provider(
                api, project, fake.base_url, args.concurrency, pb.STRUCTURED_OUTPUT_MODE_JSON_OBJECT
            ),
        }
        ideal = args.concurrency / (args.latency_ms / 1000)
        workers = system.workers(args.processes)
        try:
            for name in modes.values():  # warm-up: connections, credential cache
                measure(api, system, project, min(64, args.texts), name, labelled=True)
            runs: dict[str, list[dict]] = {"none": [], **{mode: [] for mode in modes}}
            for _ in range(args.repeat):
                runs["none"].append(measure(api, system, project, args.texts, modes["json_schema"], labelled=False))
                for mode, name in modes.items():
                    runs[mode].append(measure(api, system, project, args.texts, name, labelled=True))
        finally:
            workers.stop()
    finally:
        system.close()
        fake.close()

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[mode])

    base_rate, base_prompt, base_completion = (median("none", key) for key in ("rate", "prompt", "completion"))
    print()
    print(f"ideal concurrency / latency = {ideal:.0f} texts/s; target with labels: >= 90% of the run without")
    print(
        f"{'labels':>12} {'texts/s':>8} {'% ideal':>8} {'% none':>7} {'prompt/text':>12} {'compl./text':>12} "
        f"{'extra tokens/text':>18} {'CPU s/1k':>9} {'dropped':>8}"
    )
    for mode in runs:
        rate, prompt, completion = (median(mode, key) for key in ("rate", "prompt", "completion"))
        extra = (prompt - base_prompt) + (completion - base_completion)
        print(
            f"{mode:>12} {rate:>8.0f} {rate / ideal:>8.0%} {rate / base_rate:>7.0%} {prompt:>12.1f} "
            f"{completion:>12.1f} {extra:>+18.1f} {median(mode, 'cpu_per_1k'):>9.2f} "
            f"{int(median(mode, 'dropped')):>8}"
        )
    print("(tokens are the fake provider's words; 'none' is the same jobs without labels)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is shown)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SYNTHTASKS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("SYNTHTASKS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
