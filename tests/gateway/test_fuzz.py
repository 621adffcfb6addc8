"""Property-based: random and near-valid requests at every public RPC through the
gateway, as the admin and as a project member. Whatever the input:

- the status is never INTERNAL or UNKNOWN,
- a call that fails writes nothing (registry and task store rows, Redis keys),
- an error message stays under 1,000 characters.

Bounded: first the inputs that once broke the API, then a fixed number of
derandomized examples (the same ones every run), so the test takes seconds and fails
the same way twice. Endpoints are drawn from loopback
URLs and malformed strings only: live checks never leave this machine."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import psycopg
import pytest
import redis
from google.protobuf.field_mask_pb2 import FieldMask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.internal.v1 import job_store_service_pb2_grpc
from synthtasks.v1 import audit_service_pb2 as audit_pb
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as pb
from synthtasks.v1 import task_service_pb2 as task_pb
from synthtasks.v1 import token_service_pb2 as token_pb

from services.runtime.channels import internal_channel
from tests.stack import Clients, Stack

# Random examples per RPC (31 RPCs), after the known-bad corpus (known_bad_requests): the
# whole test took 25 s on a 2-core machine shared with other test runs.
EXAMPLES_PER_RPC = 15
MAX_MESSAGE = 1000
STREAM_SECONDS = 5


@dataclass
class World:
    """What exists before the fuzzing starts: names for near-valid requests."""

    project: str
    provider: str
    jobs: list[str]
    texts: list[str]
    tasks: list[str]
    endpoints: list[str]
    admin: Clients
    member: Clients


def _seed(stack: Stack, fake_llm) -> World:
    admin = stack.admin()
    project = f"fuzz-{uuid.uuid4().hex[:8]}"
    parent = f"projects/{project}"
    provider = admin.providers.CreateProvider(
        pb.CreateProviderRequest(
            provider=pb.Provider(
                display_name=f"Fuzz {project}",
                kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
                endpoint=fake_llm.openai_base_url,
                model="gpt-4o-mini",
            )
        )
    ).provider
    admin.providers.AssignProvider(pb.AssignProviderRequest(project=parent, provider=provider.name, default=True))
    secret = admin.tokens.CreateToken(
        token_pb.CreateTokenRequest(token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_PROJECT, projects=[parent]))
    ).secret
    # Jobs recorded straight in the task store: nothing is enqueued, so no worker ever runs them.
    with internal_channel(stack.task_store_address, stack.gateway_settings) as channel:
        store = job_store_service_pb2_grpc.JobStoreServiceStub(channel)
        jobs = [
            store.CreateJob(
                store_pb.CreateJobRequest(
                    parent=parent,
                    generation_job=gen_pb.GenerationJob(
                        prompt="Write a sentence.", text_count=count, temperature=1, provider=provider.name
                    ),
                )
            ).generation_job.name
            for count in (3, 2)
        ]
        store.AppendResults(
            store_pb.AppendResultsRequest(
                name=jobs[0],
                results=[
                    store_pb.SlotResult(slot=slot, text=store_pb.GeneratedText(text=f"Fuzz text {slot}."))
                    for slot in range(3)
                ],
            )
        )
    texts = [t.name for t in admin.tasks.ListStagedTexts(task_pb.ListStagedTextsRequest(parent=parent)).staged_texts]
    admin.tasks.ImportStagedTexts(task_pb.ImportStagedTextsRequest(parent=parent, names=texts[:1]))
    tasks = [t.name for t in admin.tasks.ListTasks(task_pb.ListTasksRequest(parent=parent)).tasks]
    endpoints = [
        fake_llm.openai_base_url,
        fake_llm.base_url,
        "http://127.0.0.1:9/v1",
        "http://[::1]:9/v1",
        "not a url",
        "ftp://127.0.0.1/v1",
        "http://127.0.0.1:9/v1\n",
        "http://127.0.0.1:9/" + "x" * 3000,
    ]
    return World(project, provider.name, jobs, texts, tasks, endpoints, admin, stack.clients(secret))


# -- strategies ---------------------------------------------------------------------------

NASTY = ["", " ", "\x00", "a\x00b", "x\n", "\n", "=cmd|calc", "p" * 7000, "é" * 300, "{", "{x}", "}", "*"]
junk = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([-(2**31), 2**31 - 1, 1000, 1001, 100_000, 10**6]))


def _mutations(name: str) -> list[str]:
    head = name.rpartition("/")[0]
    return [name, name + "\n", name.upper(), f"{head}/{uuid.UUID(int=0).hex}", f"{head}/nope", head, name + "/x"]


def names_from(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([m for v in values for m in _mutations(v)]), junk)


def page_tokens() -> st.SearchStrategy[str]:
    def b64(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    crafted = [b64('{"after": 5}'), b64('{"seq": true, "query": "x"}'), b64("[" * 50_000), b64('{"seq": -1}')]
    return st.one_of(st.sampled_from(["", *crafted]), junk, st.binary(max_size=60).map(lambda b: b64(b.hex())))


def provider_messages(world: World) -> st.SearchStrategy[pb.Provider]:
    return st.builds(
        pb.Provider,
        name=names_from([world.provider]),
        display_name=junk,
        kind=st.integers(-1, 4),
        endpoint=st.sampled_from(world.endpoints),
        deployment=junk,
        api_version=st.one_of(junk, st.just("2024-06-01")),
        model=st.one_of(junk, st.just("gpt-4o-mini")),
        organization=junk,
        api_key=junk,
        limits=st.builds(
            pb.ProviderLimits, requests_per_minute=numbers, tokens_per_minute=numbers, max_concurrent_requests=numbers
        ),
        max_choices_per_request=numbers,
        etag=st.one_of(junk, st.just("v1")),
    )


def masks(paths: list[str]) -> st.SearchStrategy[FieldMask]:
    return st.lists(st.one_of(st.sampled_from(paths), junk), max_size=3).map(lambda p: FieldMask(paths=p))


@dataclass(frozen=True)
class Rpc:
    name: str
    request: Callable[[World], st.SearchStrategy]
    call: Callable[[Clients, object], object]


def _unary(service: str, method: str) -> Callable[[Clients, object], object]:
    return lambda clients, request: getattr(getattr(clients, service), method)(request, timeout=30)


def _first_of_stream(service: str, method: str) -> Callable[[Clients, object], object]:
    """Reads the stream's first message (a watch of a running job never ends by itself)."""

    def call(clients: Clients, request: object) -> object:
        stream = getattr(getattr(clients, service), method)(request, timeout=STREAM_SECONDS)
        try:
            return next(stream, None)
        finally:
            stream.cancel()

    return call


def _parents(w: World) -> st.SearchStrategy[str]:
    return names_from([f"projects/{w.project}", "projects/fuzz-elsewhere"])


def _filters(w: World) -> st.SearchStrategy[task_pb.StagedTextFilter]:
    return st.builds(
        task_pb.StagedTextFilter,
        generation_job=st.one_of(st.just(""), names_from(w.jobs)),
        state=st.integers(-1, 5),
        tag=junk,
        query=junk,
    )


def _export_options() -> st.SearchStrategy[task_pb.ExportOptions]:
    return st.builds(
        task_pb.ExportOptions,
        label_studio_from_name=junk,
        label_studio_to_name=junk,
        csv_formula_guard=st.one_of(st.none(), st.booleans()),
    )


RPCS = [
    Rpc(
        "CreateProvider",
        lambda w: st.builds(
            pb.CreateProviderRequest, provider=provider_messages(w), provider_id=junk, validate_first=st.booleans()
        ),
        _unary("providers", "CreateProvider"),
    ),
    Rpc(
        "GetProvider",
        lambda w: st.builds(pb.GetProviderRequest, name=names_from([w.provider])),
        _unary("providers", "GetProvider"),
    ),
    Rpc(
        "ListProviders",
        lambda w: st.builds(pb.ListProvidersRequest, page_size=numbers, page_token=page_tokens()),
        _unary("providers", "ListProviders"),
    ),
    Rpc(
        "UpdateProvider",
        lambda w: st.builds(
            pb.UpdateProviderRequest,
            provider=provider_messages(w),
            update_mask=masks(["display_name", "model", "limits", "limits.requests_per_minute", "kind", "api_key"]),
        ),
        _unary("providers", "UpdateProvider"),
    ),
    Rpc(
        "DeleteProvider",
        lambda w: st.builds(pb.DeleteProviderRequest, name=names_from([w.provider]), force=st.just(False), etag=junk),
        _unary("providers", "DeleteProvider"),
    ),
    Rpc(
        "ValidateProvider",
        lambda w: st.builds(pb.ValidateProviderRequest, name=names_from([w.provider])),
        _unary("providers", "ValidateProvider"),
    ),
    Rpc(
        "TestProviderConnection",
        lambda w: st.builds(pb.TestProviderConnectionRequest, provider=provider_messages(w)),
        _unary("providers", "TestProviderConnection"),
    ),
    Rpc(
        "AssignProvider",
        lambda w: st.builds(
            pb.AssignProviderRequest, project=_parents(w), provider=names_from([w.provider]), default=st.booleans()
        ),
        _unary("providers", "AssignProvider"),
    ),
    Rpc(
        "UnassignProvider",
        lambda w: st.builds(pb.UnassignProviderRequest, project=_parents(w), provider=names_from([w.provider])),
        _unary("providers", "UnassignProvider"),
    ),
    Rpc(
        "ListProjectProviders",
        lambda w: st.builds(pb.ListProjectProvidersRequest, project=_parents(w)),
        _unary("providers", "ListProjectProviders"),
    ),
    Rpc(
        "CreateToken",
        lambda w: st.builds(
            token_pb.CreateTokenRequest,
            token=st.builds(
                token_pb.ApiToken,
                display_name=junk,
                role=st.integers(-1, 3),
                projects=st.lists(_parents(w), max_size=3),
            ),
        ),
        _unary("tokens", "CreateToken"),
    ),
    Rpc(
        "ListTokens",
        lambda w: st.builds(token_pb.ListTokensRequest, page_size=numbers, page_token=page_tokens()),
        _unary("tokens", "ListTokens"),
    ),
    Rpc(
        "DeleteToken",
        lambda w: st.builds(token_pb.DeleteTokenRequest, name=st.one_of(junk, st.just("tokens/" + "0" * 16))),
        _unary("tokens", "DeleteToken"),
    ),
    Rpc(
        "GetCallerIdentity",
        # It takes no input: what varies is the caller (admin or member).
        lambda w: st.just(token_pb.GetCallerIdentityRequest()),
        _unary("tokens", "GetCallerIdentity"),
    ),
    Rpc(
        "CreateGenerationJob",
        lambda w: st.builds(
            gen_pb.CreateGenerationJobRequest,
            parent=_parents(w),
            generation_job=st.builds(
                gen_pb.GenerationJob,
                prompt=st.one_of(junk, st.just("Write about {city}."), st.just("Write a sentence.")),
                system_prompt=junk,
                temperature=st.one_of(st.floats(allow_nan=True), st.just(0.7)),
                text_count=numbers,
                provider=st.one_of(st.just(""), names_from([w.provider])),
                model=junk,
                max_output_tokens=numbers,
                tags=st.lists(junk, max_size=3),
                variables=st.lists(
                    st.builds(
                        gen_pb.PromptVariable, name=st.one_of(junk, st.just("city")), values=st.lists(junk, max_size=3)
                    ),
                    max_size=2,
                ),
                labels=st.lists(
                    st.builds(gen_pb.EntityLabel, name=st.one_of(junk, st.just("CITY")), description=junk), max_size=2
                ),
                variable_labels=st.dictionaries(st.one_of(junk, st.just("city")), st.one_of(junk, st.just("CITY"))),
            ),
            request_id=junk,
        ),
        _unary("generation", "CreateGenerationJob"),
    ),
    Rpc(
        "GetGenerationJob",
        lambda w: st.builds(gen_pb.GetGenerationJobRequest, name=names_from(w.jobs)),
        _unary("generation", "GetGenerationJob"),
    ),
    Rpc(
        "ListGenerationJobs",
        lambda w: st.builds(
            gen_pb.ListGenerationJobsRequest,
            parent=_parents(w),
            page_size=numbers,
            page_token=page_tokens(),
            state=st.integers(-1, 6),
        ),
        _unary("generation", "ListGenerationJobs"),
    ),
    Rpc(
        "WatchGenerationJob",
        lambda w: st.builds(gen_pb.WatchGenerationJobRequest, name=names_from(w.jobs)),
        _first_of_stream("generation", "WatchGenerationJob"),
    ),
    Rpc(
        "CancelGenerationJob",
        lambda w: st.builds(gen_pb.CancelGenerationJobRequest, name=names_from(w.jobs)),
        _unary("generation", "CancelGenerationJob"),
    ),
    Rpc(
        "GetProjectQuota",
        lambda w: st.builds(gen_pb.GetProjectQuotaRequest, name=names_from([f"projects/{w.project}/quota"])),
        _unary("generation", "GetProjectQuota"),
    ),
    Rpc(
        "GetEntityBalance",
        lambda w: st.builds(gen_pb.GetEntityBalanceRequest, scope=names_from([f"projects/{w.project}", *w.jobs])),
        _unary("generation", "GetEntityBalance"),
    ),
    Rpc(
        "ListAuditEvents",
        lambda w: st.builds(audit_pb.ListAuditEventsRequest, page_size=numbers, page_token=page_tokens()),
        _unary("audit", "ListAuditEvents"),
    ),
    Rpc(
        "ListStagedTexts",
        lambda w: st.builds(
            task_pb.ListStagedTextsRequest,
            parent=_parents(w),
            page_size=numbers,
            page_token=page_tokens(),
            filter=_filters(w),
        ),
        _unary("tasks", "ListStagedTexts"),
    ),
    Rpc(
        "GetStagedText",
        lambda w: st.builds(task_pb.GetStagedTextRequest, name=names_from(w.texts)),
        _unary("tasks", "GetStagedText"),
    ),
    Rpc(
        "UpdateStagedText",
        lambda w: st.builds(
            task_pb.UpdateStagedTextRequest,
            staged_text=st.builds(
                task_pb.StagedText, name=names_from(w.texts), text=junk, tags=st.lists(junk, max_size=3), etag=junk
            ),
            update_mask=masks(["text", "tags", "*", "original_text"]),
        ),
        _unary("tasks", "UpdateStagedText"),
    ),
    Rpc(
        "DiscardStagedTexts",
        lambda w: st.builds(
            task_pb.DiscardStagedTextsRequest, parent=_parents(w), names=st.lists(names_from(w.texts), max_size=3)
        ),
        _unary("tasks", "DiscardStagedTexts"),
    ),
    Rpc(
        "RestoreStagedTexts",
        lambda w: st.builds(
            task_pb.RestoreStagedTextsRequest, parent=_parents(w), names=st.lists(names_from(w.texts), max_size=3)
        ),
        _unary("tasks", "RestoreStagedTexts"),
    ),
    Rpc(
        "ImportStagedTexts",
        lambda w: st.builds(
            task_pb.ImportStagedTextsRequest,
            parent=_parents(w),
            names=st.lists(names_from(w.texts), max_size=3),
            filter=st.one_of(st.none(), _filters(w)),
        ),
        _unary("tasks", "ImportStagedTexts"),
    ),
    Rpc(
        "ListTasks",
        lambda w: st.builds(
            task_pb.ListTasksRequest,
            parent=_parents(w),
            page_size=numbers,
            page_token=page_tokens(),
            tag=junk,
            generation_job=st.one_of(st.just(""), names_from(w.jobs)),
        ),
        _unary("tasks", "ListTasks"),
    ),
    Rpc("GetTask", lambda w: st.builds(task_pb.GetTaskRequest, name=names_from(w.tasks)), _unary("tasks", "GetTask")),
    Rpc(
        "UpdateTask",
        lambda w: st.builds(
            task_pb.UpdateTaskRequest,
            task=st.builds(task_pb.Task, name=names_from(w.tasks), tags=st.lists(junk, max_size=3), etag=junk),
            update_mask=masks(["tags", "text", "*"]),
        ),
        _unary("tasks", "UpdateTask"),
    ),
    Rpc(
        "ExportStagedTexts",
        lambda w: st.builds(
            task_pb.ExportStagedTextsRequest,
            parent=_parents(w),
            filter=_filters(w),
            format=st.integers(-1, 5),
            options=_export_options(),
        ),
        _first_of_stream("tasks", "ExportStagedTexts"),
    ),
    Rpc(
        "ExportTasks",
        lambda w: st.builds(
            task_pb.ExportTasksRequest,
            parent=_parents(w),
            tag=junk,
            generation_job=st.one_of(st.just(""), names_from(w.jobs)),
            format=st.integers(-1, 5),
            options=_export_options(),
        ),
        _first_of_stream("tasks", "ExportTasks"),
    ),
]


def known_bad_requests(world: World) -> dict[str, list[object]]:
    """The inputs that once broke the API (#13), tried first on every run, then random ones."""

    def b64(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    tokens = [b64('{"after": 5}'), b64('{"after": {"x": 1}}'), b64('{"after": [true, 1]}'), b64("[" * 50_000)]
    parent = f"projects/{world.project}"
    nul_provider = pb.Provider(
        display_name="nul\x00name", kind=pb.PROVIDER_KIND_OPENAI_COMPATIBLE, endpoint=world.endpoints[0], model="m"
    )
    return {
        "ListProviders": [pb.ListProvidersRequest(page_token=t) for t in tokens],
        "ListTokens": [token_pb.ListTokensRequest(page_token=t) for t in tokens],
        "ListGenerationJobs": [gen_pb.ListGenerationJobsRequest(parent=parent, page_token=t) for t in tokens],
        "ListStagedTexts": [task_pb.ListStagedTextsRequest(parent=parent, page_token=t) for t in tokens],
        "ListTasks": [task_pb.ListTasksRequest(parent=parent, page_token=t) for t in tokens],
        "ListAuditEvents": [audit_pb.ListAuditEventsRequest(page_token=t) for t in [*tokens, b64('{"before": true}')]],
        "CreateProvider": [
            pb.CreateProviderRequest(provider=nul_provider),
            pb.CreateProviderRequest(
                provider=pb.Provider(
                    display_name="nul key",
                    kind=pb.PROVIDER_KIND_OPENAI,
                    endpoint=world.endpoints[0],
                    model="m",
                    api_key="sk-\x00",
                )
            ),
            pb.CreateProviderRequest(provider=nul_provider, provider_id="lookalike\n"),
        ],
        "CreateToken": [
            token_pb.CreateTokenRequest(token=token_pb.ApiToken(role=token_pb.TOKEN_ROLE_ADMIN, display_name="\x00"))
        ],
        "UpdateProvider": [
            pb.UpdateProviderRequest(
                provider=pb.Provider(name=world.provider), update_mask=FieldMask(paths=["p" * 7000])
            )
        ],
        "GetProvider": [pb.GetProviderRequest(name=world.provider + "\n")],
        "ListProjectProviders": [pb.ListProjectProvidersRequest(project=parent + "\n")],
        "CreateGenerationJob": [
            gen_pb.CreateGenerationJobRequest(
                parent=parent, generation_job=gen_pb.GenerationJob(prompt="{" + "x" * 7000 + "!}", text_count=1)
            )
        ],
        "CancelGenerationJob": [gen_pb.CancelGenerationJobRequest(name=f"{parent}/generationJobs/{'0' * 32}")],
    }


# -- what a failed call must not change ---------------------------------------------------

_REGISTRY_STATE = (
    "SELECT (SELECT count(*) FROM providers), (SELECT coalesce(sum(version), 0) FROM providers),"
    " (SELECT count(*) FROM project_providers), (SELECT count(*) FILTER (WHERE is_default) FROM project_providers),"
    " (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM audit_events)"
)
_TASKS_STATE = (
    "SELECT (SELECT count(*) FROM generation_jobs), (SELECT coalesce(sum(version), 0) FROM generation_jobs),"
    " (SELECT count(*) FROM staged_texts), (SELECT coalesce(sum(version), 0) FROM staged_texts),"
    " (SELECT count(*) FROM tasks), (SELECT coalesce(sum(version), 0) FROM tasks)"
)


@pytest.fixture
def state_of(stack: Stack) -> Iterator[Callable[[], tuple]]:
    """What a failed call must leave as it was. In Redis, only what names a fuzzed project
    (stop flags, queue messages; all start `fuzz-`): keys other tests left expire on their own."""
    registry = psycopg.connect(stack.registry_settings.database_url, autocommit=True)
    tasks = psycopg.connect(stack.task_store_settings.database_url, autocommit=True)
    keys = redis.Redis.from_url(stack.gateway_settings.redis_url)
    namespace = stack.gateway_settings.redis_namespace

    def state() -> tuple:
        marker = b"projects/fuzz-"
        messages = sum(
            marker in body for key in keys.scan_iter(match=f"{namespace}:*.msgs") for body in keys.hvals(key)
        )
        return (
            registry.execute(_REGISTRY_STATE).fetchone(),
            tasks.execute(_TASKS_STATE).fetchone(),
            sorted(keys.scan_iter(match=f"{namespace}*projects/fuzz-*", count=1000)),
            messages,
        )

    yield state
    registry.close()
    tasks.close()
    keys.close()


def test_no_request_to_any_public_rpc_gets_internal_writes_when_failing_or_answers_at_length(stack, fake_llm, state_of):
    world = _seed(stack, fake_llm)
    outcomes: Counter[str] = Counter()
    rpcs_called: set[str] = set()

    corpus = known_bad_requests(world)

    def calls_of(rpc: Rpc) -> Callable[[], None]:
        @given(as_admin=st.booleans(), request=rpc.request(world))
        def call(as_admin: bool, request: object) -> None:
            before = state_of()
            try:
                rpc.call(world.admin if as_admin else world.member, request)
                code, message = grpc.StatusCode.OK, ""
            except grpc.RpcError as error:
                code, message = error.code(), error.details() or ""
            rpcs_called.add(rpc.name)
            outcomes[code.name] += 1
            assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{rpc.name}: {message[:300]}"
            assert len(message) < MAX_MESSAGE, f"{rpc.name}: {len(message)} characters"
            if code != grpc.StatusCode.OK:
                assert state_of() == before, f"{rpc.name} failed with {code.name} but wrote"

        for request in corpus.get(rpc.name, ()):
            call = example(as_admin=True, request=request)(call)
        return settings(
            max_examples=EXAMPLES_PER_RPC,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(call)

    try:
        for rpc in RPCS:
            calls_of(rpc)()
    finally:
        _cancel_unfinished_jobs(world)

    # The controls: the examples reached every RPC, and both succeeded and failed.
    assert rpcs_called == {rpc.name for rpc in RPCS}, sorted({rpc.name for rpc in RPCS} - rpcs_called)
    assert outcomes["OK"] > 0 and outcomes["INVALID_ARGUMENT"] > 0, outcomes


def _cancel_unfinished_jobs(world: World) -> None:
    """Jobs the fuzzer started are enqueued: cancel them, so no later test's worker runs them."""
    listed = world.admin.generation.ListGenerationJobs(
        gen_pb.ListGenerationJobsRequest(parent=f"projects/{world.project}", page_size=1000)
    )
    for job in listed.generation_jobs:
        if job.state in (gen_pb.GENERATION_JOB_STATE_QUEUED, gen_pb.GENERATION_JOB_STATE_RUNNING):
            world.admin.generation.CancelGenerationJob(gen_pb.CancelGenerationJobRequest(name=job.name))
