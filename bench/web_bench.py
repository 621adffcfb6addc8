"""Review web app benchmark: its pages over a project of 100,000 staged texts.

    python -m bench.web_bench [--texts 100000] [--rounds 30]    # from the repository root

Starts the registry, task store and gateway in this process (tests/stack.py, on fresh
databases and a fresh Redis namespace) and the web app as its own process
(`python -m services.web`), fills one project through the task store's AppendResults in
batches of 1,000 (10,000 texts per job), signs in over HTTP like a browser (cookie and
CSRF token), then measures p50/p95 of each page, and the CSV download of all texts:
total time, time to the first byte and the web process's peak RSS growth (VmHWM, reset
before the download where the kernel allows). Figures only: the machine may be shared.

Needs Postgres and Redis (the test suite's: SYNTHTASKS_TEST_POSTGRES_URL, SYNTHTASKS_TEST_REDIS_URL).
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import redis
from cryptography.fernet import Fernet
from synthtasks.internal.v1 import job_store_service_pb2 as job_store_pb2
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import generation_service_pb2 as generation_pb2
from synthtasks.v1 import task_service_pb2 as task_pb2

from services.runtime.channels import internal_channel
from services.runtime.config import CommonSettings
from tests.infrastructure import database_url, drop_database, infrastructure, unique_name
from tests.stack import running_stack

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "bench"
BATCH = 1000
TEXTS_PER_JOB = 10_000
WORDS = [
    "the",
    "annotation",
    "team",
    "needs",
    "more",
    "rare",
    "entities",
    "such",
    "as",
    "Köln",
    "Zürich",
    "invoices",
    "dosage",
    "clause",
    "shipment",
    "café",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fill(jobs, count: int) -> list[str]:
    names = []
    for first in range(0, count, TEXTS_PER_JOB):
        size = min(TEXTS_PER_JOB, count - first)
        job = jobs.CreateJob(
            job_store_pb2.CreateJobRequest(
                parent=f"projects/{PROJECT}",
                generation_job=generation_pb2.GenerationJob(
                    prompt="Write an example about {topic}.",
                    temperature=0.8,
                    text_count=size,
                    provider="providers/bench",
                    tags=["bench"],
                ),
            ),
            timeout=60,
        ).generation_job
        names.append(job.name)
        for start in range(0, size, BATCH):
            results = [
                job_store_pb2.SlotResult(
                    slot=slot,
                    text=job_store_pb2.GeneratedText(
                        text=f"{first + slot}: " + " ".join(WORDS[(first + slot + i) % len(WORDS)] for i in range(12)),
                        model="bench-model",
                        prompt_tokens=40,
                        completion_tokens=60,
                        finish_reason="stop",
                        variables={"topic": "invoices"},
                    ),
                )
                for slot in range(start, min(start + BATCH, size))
            ]
            jobs.AppendResults(job_store_pb2.AppendResultsRequest(name=job.name, results=results), timeout=60)
    return names


class Browser:
    """Just enough of a browser: a cookie jar, and the CSRF token read from the form."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> bytes:
        with self.opener.open(self.base + path, timeout=120) as reply:
            assert reply.status == 200, (path, reply.status)
            return reply.read()

    def sign_in(self, token: str, project: str) -> None:
        """Sign in, then open `project` on the project chooser the sign-in leads to."""
        url, chooser = self.post("/sign-in", self.get("/sign-in").decode(), {"token": token})
        assert url.endswith("/projects"), url
        url, _ = self.post("/projects", chooser, {"project": project})
        assert url.endswith(f"/p/{project}/texts"), url

    def post(self, path: str, form_page: str, fields: dict[str, str]) -> tuple[str, str]:
        """Post `fields` with the CSRF token of `form_page` (a new session gets a new one);
        the URL and page it ends on."""
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)
        form = urllib.parse.urlencode({"csrf_token": csrf, **fields}).encode()
        with self.opener.open(self.base + path, data=form, timeout=60) as reply:
            assert reply.status == 200, (path, reply.status)
            return reply.url, reply.read().decode()


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web app exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/readyz", timeout=2) as reply:
            if reply.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the web app did not become ready")


def time_page(browser: Browser, path: str, rounds: int) -> tuple[float, float, int]:
    browser.get(path)  # warm up
    took = []
    size = 0
    for _ in range(rounds):
        started = time.perf_counter()
        size = len(browser.get(path))
        took.append(time.perf_counter() - started)
    return percentile(took, 0.5), percentile(took, 0.95), size


def download(browser: Browser, path: str, pid: int) -> dict[str, float]:
    reset = reset_peak(pid)
    before = memory_kb(pid, "VmHWM" if reset else "VmRSS")
    started = time.perf_counter()
    first_byte = 0.0
    total = 0
    with browser.opener.open(browser.base + path, timeout=600) as reply:
        while chunk := reply.read(64 * 1024):
            if not first_byte:
                first_byte = time.perf_counter() - started
            total += len(chunk)
    return {
        "seconds": time.perf_counter() - started,
        "first_byte": first_byte,
        "bytes": total,
        "rss_growth_mb": (memory_kb(pid, "VmHWM") - before) / 1024,
        "peak_reset": reset,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    created: list[str] = []
    with infrastructure() as infra:

        def make_database(prefix: str) -> str:
            name = unique_name(f"synthtasks_webbench_{prefix}")
            created.append(name)
            return database_url(infra.postgres_url, name)

        namespace = unique_name("synthtasks-webbench")
        try:
            with running_stack(
                make_database=make_database, redis_url=infra.redis_url, redis_namespace=namespace
            ) as stack:
                run(stack, args)
        finally:
            for name in created:
                drop_database(infra.postgres_url, name)
            client = redis.Redis.from_url(infra.redis_url)
            for key in client.scan_iter(match=f"{namespace}*", count=1000):
                client.delete(key)
            client.close()


def run(stack, args: argparse.Namespace) -> None:
    settings = CommonSettings(internal_token=stack.registry_settings.internal_token.get_secret_value())
    with internal_channel(stack.task_store_address, settings) as channel:
        started = time.perf_counter()
        jobs = fill(job_store_service_pb2_grpc.JobStoreServiceStub(channel), args.texts)
        print(f"web app benchmark: {args.texts:,} staged texts in projects/{PROJECT} ({len(jobs)} jobs)")
        print(f"  fill through AppendResults                 {time.perf_counter() - started:8.1f} s")
    admin = stack.admin()
    # One job imported, so that the tasks page has 10,000 tasks to page through.
    admin.tasks.ImportStagedTexts(
        task_pb2.ImportStagedTextsRequest(
            parent=f"projects/{PROJECT}", filter=task_pb2.StagedTextFilter(generation_job=jobs[0])
        ),
        timeout=300,
    )
    # A page token deep into the project (the last page of 50), taken from the gateway.
    token, request = "", task_pb2.ListStagedTextsRequest(parent=f"projects/{PROJECT}", page_size=1000)
    for _ in range(args.texts // 1000 - 1):
        request.page_token = token
        token = admin.tasks.ListStagedTexts(request, timeout=60).next_page_token
    port = free_port()
    environment = {
        **os.environ,
        "SYNTHTASKS_LOG_LEVEL": "WARNING",
        "SYNTHTASKS_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "SYNTHTASKS_WEB_GATEWAY_ADDRESS": stack.gateway_address,
        "SYNTHTASKS_WEB_METRICS_PORT": "0",
        "SYNTHTASKS_WEB_SESSION_KEYS": Fernet.generate_key().decode(),
    }
    web = subprocess.Popen([sys.executable, "-m", "services.web"], env=environment, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, web)
        browser = Browser(base)
        browser.sign_in(stack.admin_token, PROJECT)
        job_id = jobs[-1].rsplit("/", 1)[-1]
        pages = [
            ("review, first page (50 texts)", "/p/bench/texts"),
            ("review, a page near the end", "/p/bench/texts?" + urllib.parse.urlencode({"page": token})),
            ("review, filtered by job", f"/p/bench/texts?job={job_id}"),
            ("review, filtered by state", "/p/bench/texts?state=imported"),
            ("review, text search (no match)", "/p/bench/texts?q=" + secrets.token_hex(6)),
            ("live job page", f"/p/bench/jobs/{job_id}"),
            ("jobs", "/p/bench/jobs"),
            ("tasks (10,000)", "/p/bench/tasks?tag=synthetic"),
        ]
        for title, path in pages:
            p50, p95, size = time_page(browser, path, args.rounds)
            print(f"  {title:40} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   {size / 1024:6.0f} KiB")
        result = download(browser, "/p/bench/texts/export?format=csv", web.pid)
        print(
            f"  CSV download of all {args.texts:,} texts          {result['seconds']:7.2f} s   "
            f"first byte {result['first_byte'] * 1000:.0f} ms   {result['bytes'] / 2**20:.1f} MiB   "
            f"web process peak RSS growth {result['rss_growth_mb']:.1f} MB"
            + ("" if result["peak_reset"] else " (peak not resettable here: growth over RSS)")
        )
        print(f"  (machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; may be shared)")
    finally:
        web.terminate()
        web.wait(timeout=30)


if __name__ == "__main__":
    main()
