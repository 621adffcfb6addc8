"""The engine that fills one range of slots of one job.

`fill_slot_range` reads the job and the already-filled slots from the task store (so a
redelivered range redoes only what is missing), then:

- groups the unfilled slots by their prompt (slots with the same variable values share
  one) and cuts each group into requests of n = min(max_choices_per_request, remaining)
  choices; a provider that answers fewer choices than asked (n ignored) gets the rest in
  further requests;
- runs every request concurrently under the provider's shared limits, checking the job's
  stop flag in the same step that grants capacity, i.e. right before each call, and
  recording the grant for the cancel handshake (generation_queue/stop_flags.py): a call
  not sent within its send-by time after the grant is not sent at all;
- hands back what it will not start soon (generation_queue/hand_back.py): a request
  whose first call would wait longer than `capacity_wait_seconds` for the provider's
  capacity (RPM, TPM, concurrency, a 429 pause) gives up, no further first calls of the
  message start, and once the calls in flight have ended the slots not started are
  enqueued again, due when the limiter expects capacity. When the worker is draining
  (SIGTERM), every request that is not in flight gives up the same way, due at once.
  Requests already retrying keep their message (their attempt count lives here) unless
  the worker drains;
- retries transient failures (429 honouring Retry-After, 5xx, timeouts, connection
  errors) with exponential backoff and jitter, a bounded number of times; after the last
  attempt the slots are recorded as failed with the reason. A 429 with Retry-After also
  pauses the provider for every worker (limiter.py). Permanent failures (400, content
  filter) fail their slots at once;
- on a bad key, a missing deployment or model: fetches the credential once more (the
  key may just have been rotated) and, if that does not help, fails the whole job and
  raises its stop flag, so every worker stops within seconds instead of after N x retries;
- for a job with labels (pre-annotation), asks for the text with its entities as
  structured output (`response_format`, as the provider's `structured_output` says),
  sends a failed reply back once with what was wrong (MAX_REPAIRS) before failing the
  slot BAD_STRUCTURED_OUTPUT, and locates the entities in the text itself
  (annotation.py); the repair's tokens count with the text's;
- appends results in micro-batches (results.py) with their lineage; for `unique` jobs a
  duplicate is refused by the task store and regenerated, up to `unique_extra_calls`
  times per slot, the last attempt being kept (flagged) whatever it is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.trace import SpanKind
from synthtasks.internal.v1 import credential_service_pb2 as credential_pb
from synthtasks.internal.v1 import job_store_service_pb2 as store_pb
from synthtasks.v1 import generation_service_pb2 as pb
from synthtasks.v1 import provider_service_pb2 as provider_pb
from synthtasks.v1 import task_service_pb2 as task_pb

from services.generation_queue.messages import SlotRange
from services.generation_queue.prompts import render, slot_variables
from services.generation_queue.stop_flags import (
    GRANT_SEND_WITHIN_SECONDS,
    granted_calls_key,
    is_job_stopped,
    mark_job_stopped_async,
    stop_key,
)
from services.generator_worker import annotation
from services.generator_worker.context import WorkerContext
from services.generator_worker.errors import JobStopped, ProviderMissing
from services.generator_worker.job_store import TERMINAL_STATES
from services.generator_worker.limiter import LimiterAborted, Limits, NoCapacity
from services.generator_worker.metrics import PROVIDER_REQUEST_SECONDS, PROVIDER_REQUESTS
from services.generator_worker.results import ResultSink
from services.provider_access import FailureKind, ProviderFailure, classify
from services.runtime.tracing import span

log = logging.getLogger(__name__)

_REASONS = {
    FailureKind.INVALID_KEY: pb.FAILURE_REASON_INVALID_KEY,
    FailureKind.ENDPOINT_UNREACHABLE: pb.FAILURE_REASON_PROVIDER_UNAVAILABLE,
    FailureKind.DEPLOYMENT_NOT_FOUND: pb.FAILURE_REASON_DEPLOYMENT_NOT_FOUND,
    FailureKind.MODEL_NOT_FOUND: pb.FAILURE_REASON_MODEL_NOT_FOUND,
    FailureKind.RATE_LIMITED: pb.FAILURE_REASON_RATE_LIMITED,
    FailureKind.QUOTA_EXCEEDED: pb.FAILURE_REASON_QUOTA_EXCEEDED,
    FailureKind.TIMEOUT: pb.FAILURE_REASON_TIMEOUT,
    FailureKind.CONTENT_FILTERED: pb.FAILURE_REASON_CONTENT_FILTERED,
    FailureKind.SERVER_ERROR: pb.FAILURE_REASON_PROVIDER_ERROR,
    FailureKind.BAD_REQUEST: pb.FAILURE_REASON_PROVIDER_ERROR,
    FailureKind.BAD_RESPONSE: pb.FAILURE_REASON_BAD_RESPONSE,
    FailureKind.ERROR: pb.FAILURE_REASON_PROVIDER_ERROR,
}
_KIND_LABELS = {
    provider_pb.PROVIDER_KIND_OPENAI: "openai",
    provider_pb.PROVIDER_KIND_AZURE_OPENAI: "azure_openai",
    provider_pb.PROVIDER_KIND_OPENAI_COMPATIBLE: "openai_compatible",
}
# Retry-After is honoured, within reason: a provider asking for an hour gets the slot failed.
_MAX_RETRY_AFTER_SECONDS = 120.0
# Handed-back slots are due no sooner than this (a concurrency wait has no known end) and
# no later than this (the limiter's waits are a minute at most; a pause two).
_MIN_HAND_BACK_DELAY_SECONDS = 1.0
_MAX_HAND_BACK_DELAY_SECONDS = 300.0
# While draining, sleeps (backoff, Retry-After) are cut into steps this long.
_DRAIN_CHECK_SECONDS = 0.25


# Seeds are int64 in the API; the provider's is an integer too (OpenAI: int64).
_SEED_RANGE = 2**63


def _seed_offset(slot: _Slot, text_count: int) -> int:
    """What a request's seed adds to the job's: its first slot, and each duplicate retry of
    that slot moves it on by the job's size, so no two requests of a job share a seed."""
    return slot.number + slot.duplicate_retries * text_count


def failure_reason(kind: FailureKind) -> pb.FailureReason:
    return _REASONS.get(kind, pb.FAILURE_REASON_PROVIDER_ERROR)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 12
    base_seconds: float = 0.25
    max_seconds: float = 10.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and retry_after > 0:
            # A little jitter so that callers told the same Retry-After do not return together.
            return min(retry_after, _MAX_RETRY_AFTER_SECONDS) * random.uniform(1.0, 1.2)
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str


@dataclass(frozen=True)
class Completion:
    """What one successful request returned, with the request's totals."""

    choices: list[Choice]
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_seconds: float


@dataclass(frozen=True)
class Failed:
    """A request that will not be retried (any more): its slots fail with this."""

    reason: pb.FailureReason
    message: str


class _GaveUp(Exception):
    """A request gives up waiting for capacity: its slots are handed back."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"handed back for {retry_after:.1f} s")
        self.retry_after = retry_after


@dataclass
class _Slot:
    number: int
    duplicate_retries: int = 0


@dataclass
class _Prompt:
    messages: list[dict[str, str]]
    variables: dict[str, str]
    # Values of variables bound to a label (value -> label): always marked in the text.
    bound: dict[str, str]
    slots: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Annotated:
    """A structured reply read and its entities located."""

    text: str
    spans: list[task_pb.Span]
    dropped: int


async def fill_slot_range(context: WorkerContext, slot_range: SlotRange) -> None:
    """Fill the unfilled slots of `slot_range`. Returns when they are all written (texts
    or failures), or the job has ended. Raises DependencyUnavailable when the task store,
    registry or Redis fail (the message is retried later)."""
    if context.draining():
        await context.hand_back(slot_range.job, slot_range.slots, delay_seconds=0)
        return
    if await is_job_stopped(context.redis, context.namespace, slot_range.job):
        return
    try:
        work = await context.job_store.get_job_work(slot_range.job, slot_range.first_slot, slot_range.slot_count)
    except JobStopped:
        return
    job = work.generation_job
    if job.state in TERMINAL_STATES:
        return
    filled = set(work.filled_slots)
    todo = [slot for slot in slot_range.slots if slot not in filled and slot < job.text_count]
    if not todo:
        return
    try:
        credential = await context.credentials.get(job.provider)
    except ProviderMissing as missing:
        await _fail_job(context, job.name, pb.FAILURE_REASON_PROVIDER_ERROR, str(missing))
        return
    try:
        await RangeFiller(context, job, credential).run(todo)
    except JobStopped:
        log.info("job stopped while filling", extra={"job": job.name, "first_slot": slot_range.first_slot})


async def _fail_job(context: WorkerContext, job: str, reason: pb.FailureReason, message: str) -> None:
    """End the whole job, then raise its stop flag so every worker stops."""
    await context.job_store.fail_job(job, pb.JobError(reason=reason, message=message))
    await mark_job_stopped_async(context.redis, context.namespace, job, "failed")
    log.warning(
        "job failed",
        extra={"job": job, "reason": pb.FailureReason.Name(reason), "provider_message": message},
    )


class RangeFiller:
    """Fills given slots of one job; one instance per message."""

    def __init__(
        self, context: WorkerContext, job: pb.GenerationJob, credential: credential_pb.ProviderCredential
    ) -> None:
        settings = context.settings
        self._context = context
        self._job = job
        self._credential = credential
        self._stop_key = stop_key(context.namespace, job.name)
        self._calls_key = granted_calls_key(context.namespace, job.name)
        # Slots given up on (handed back once the calls in flight have ended), and the
        # longest wait for capacity the limiter foresaw among them.
        self._given_up: list[int] = []
        self._give_up_wait: float | None = None
        self._policy = RetryPolicy(settings.max_attempts, settings.backoff_base_seconds, settings.backoff_max_seconds)
        self._stopped = False
        self._refreshed_credential = False
        self._job_failure_lock = asyncio.Lock()
        self._sink = ResultSink(context.job_results(job.name), on_job_ended=self._job_ended)
        self._labels = [annotation.Label(label.name, label.description) for label in job.labels]

    async def run(self, slots: Sequence[int]) -> None:
        try:
            await self._run(slots)
        finally:
            self._sink.discard()  # no-op once closed; else stop waiting for its results

    async def _run(self, slots: Sequence[int]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for prompt in self._prompts(slots):
                    n = self._max_choices()
                    for start in range(0, len(prompt.slots), n):
                        chunk = [_Slot(number) for number in prompt.slots[start : start + n]]
                        group.create_task(self._fill(prompt, chunk))
        except BaseExceptionGroup as group_error:
            stopped, others = group_error.split(JobStopped)
            if others is not None:
                await self._flush_quietly()
                raise others.exceptions[0] if len(others.exceptions) == 1 else others from None
            if stopped is not None:
                self._sink.discard()
                raise JobStopped(self._job.name) from None
        if self._stopped:
            self._sink.discard()
            raise JobStopped(self._job.name)
        await self._sink.close()
        if self._given_up:
            delay = 0.0
            if not self._context.draining():
                delay = min(max(self._give_up_wait or 0.0, _MIN_HAND_BACK_DELAY_SECONDS), _MAX_HAND_BACK_DELAY_SECONDS)
            await self._context.hand_back(self._job.name, self._given_up, delay_seconds=delay)
            log.info(
                "handed slots back",
                extra={"job": self._job.name, "slots": len(self._given_up), "delay_seconds": round(delay, 3)},
            )

    def _prompts(self, slots: Sequence[int]) -> list[_Prompt]:
        variables = [(variable.name, list(variable.values)) for variable in self._job.variables]
        prompts: dict[tuple, _Prompt] = {}
        for slot in slots:
            values = slot_variables(variables, slot, self._job.text_count)
            key = tuple(sorted(values.items()))
            prompt = prompts.get(key)
            if prompt is None:
                bound = {
                    values[variable]: label
                    for variable, label in self._job.variable_labels.items()
                    if variable in values
                }
                system = [render(self._job.system_prompt, values)] if self._job.system_prompt else []
                if self._labels:
                    # In the one system message: some local servers' chat templates refuse a second.
                    system.append(annotation.instructions(self._labels, bound))
                messages = [{"role": "system", "content": "\n\n".join(system)}] if system else []
                messages.append({"role": "user", "content": render(self._job.prompt, values)})
                prompt = prompts[key] = _Prompt(messages, values, bound)
            prompt.slots.append(slot)
        return list(prompts.values())

    def _max_choices(self) -> int:
        return max(1, self._credential.max_choices_per_request)

    def _job_ended(self, state: int) -> None:
        if state != pb.GENERATION_JOB_STATE_SUCCEEDED:
            self._stopped = True

    async def _flush_quietly(self) -> None:
        try:
            await self._sink.close()
        except Exception:  # noqa: BLE001 - the original failure is the one to report
            log.debug("flush after a failure failed too", extra={"job": self._job.name})

    async def _fill(self, prompt: _Prompt, pending: list[_Slot]) -> None:
        """Fill `pending` slots that share `prompt`, until each holds a text or a failure."""
        while pending:
            n = min(self._max_choices(), len(pending))
            try:
                outcome = await self._call(prompt.messages, n, _seed_offset(pending[0], self._job.text_count))
            except _GaveUp as gave_up:
                self._given_up.extend(slot.number for slot in pending)
                self._give_up_wait = max(self._give_up_wait or 0.0, gave_up.retry_after)
                return
            if isinstance(outcome, Failed):
                for slot in pending:
                    self._sink.add(_failure(slot.number, outcome))
                return
            taken, pending = pending[: len(outcome.choices)], pending[len(outcome.choices) :]
            shares = _token_shares(outcome, len(taken))
            waiting: list[tuple[_Slot, asyncio.Future]] = []
            for slot, choice, tokens in zip(taken, outcome.choices, shares, strict=False):
                annotated: _Annotated | Failed | None = None
                if self._labels and choice.text.strip():
                    try:
                        annotated, tokens = await self._annotate(prompt, slot, choice.text, tokens)
                    except _GaveUp as gave_up:  # the repair could not start: hand the slot back
                        self._given_up.append(slot.number)
                        self._give_up_wait = max(self._give_up_wait or 0.0, gave_up.retry_after)
                        self._sink.add_extra_tokens(*tokens)
                        continue
                if isinstance(annotated, Failed):
                    result = _failure(slot.number, annotated)
                else:
                    result = self._slot_result(slot, choice, outcome, tokens, prompt.variables, annotated)
                if result.HasField("failure"):
                    # Billed all the same; a refused duplicate, by contrast, is counted by
                    # the task store from the text it was sent.
                    self._sink.add_extra_tokens(*tokens)
                refusable = result.reject_duplicate
                future = self._sink.add(result, want_outcome=refusable)
                if future is not None:  # the sink gives one when asked for the outcome
                    waiting.append((slot, future))
            for slot, future in waiting:
                written = await future
                if not written.written and written.duplicate:
                    slot.duplicate_retries += 1
                    pending.append(slot)

    async def _annotate(
        self, prompt: _Prompt, slot: _Slot, content: str, tokens: tuple[int, int]
    ) -> tuple[_Annotated | Failed, tuple[int, int]]:
        """Read a structured reply, asking for a repair up to MAX_REPAIRS times, and locate
        its entities; also returns the tokens with the repairs'. Raises _GaveUp when a
        repair cannot start (the worker drains)."""
        messages = prompt.messages
        label_names = [label.name for label in self._labels]
        repairs = 0
        while True:
            try:
                reply = annotation.parse(content, label_names)
                break
            except annotation.BadReply as bad:
                if repairs == annotation.MAX_REPAIRS:
                    message = f"the reply was not the JSON asked for, after {repairs} repair request(s): {bad}"
                    return Failed(pb.FAILURE_REASON_BAD_STRUCTURED_OUTPUT, message), tokens
                repairs += 1
                messages = [
                    *messages,
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": annotation.repair_request(str(bad))},
                ]
            outcome = await self._call(messages, 1, _seed_offset(slot, self._job.text_count), repair=True)
            if isinstance(outcome, Failed):
                return outcome, tokens
            tokens = (tokens[0] + outcome.prompt_tokens, tokens[1] + outcome.completion_tokens)
            content = outcome.choices[0].text
        placement = annotation.locate(reply.text, reply.entities, prompt.bound)
        spans = [task_pb.Span(start=s.start, end=s.end, label=s.label, text=s.surface) for s in placement.spans]
        return _Annotated(reply.text, spans, placement.dropped), tokens

    def _slot_result(
        self,
        slot: _Slot,
        choice: Choice,
        completion: Completion,
        tokens: tuple[int, int],
        variables: dict[str, str],
        annotated: _Annotated | None,
    ) -> store_pb.SlotResult:
        if choice.finish_reason == "content_filter" and not choice.text.strip():
            return _failure(slot.number, Failed(pb.FAILURE_REASON_CONTENT_FILTERED, "the provider filtered the reply"))
        if annotated is not None:
            choice = Choice(annotated.text, choice.finish_reason)
        if not choice.text.strip():
            return _failure(slot.number, Failed(pb.FAILURE_REASON_BAD_RESPONSE, "the provider returned an empty text"))
        now = Timestamp()
        now.GetCurrentTime()
        latency = Duration()
        latency.FromNanoseconds(int(completion.latency_seconds * 1e9))
        text = store_pb.GeneratedText(
            text=choice.text,
            model=completion.model,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            finish_reason=choice.finish_reason,
            latency=latency,
            generate_time=now,
            variables=variables,
        )
        if annotated is not None:
            text.spans.extend(annotated.spans)
            text.dropped_spans = annotated.dropped
        reject = self._job.unique and slot.duplicate_retries < self._context.settings.unique_extra_calls
        return store_pb.SlotResult(slot=slot.number, text=text, reject_duplicate=reject)

    # --- one request, with retries ---------------------------------------------------

    async def _call(
        self, messages: list[dict[str, str]], n: int, seed_offset: int, *, repair: bool = False
    ) -> Completion | Failed:
        """One request of n choices, tried up to max_attempts times. A `repair` request
        follows a reply already paid for, so it waits for capacity instead of giving up."""
        last: ProviderFailure | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            outcome, credential = await self._attempt(messages, n, seed_offset, first=attempt == 1 and not repair)
            if isinstance(outcome, Completion):
                return outcome
            last = outcome
            if outcome.fails_whole_job:
                # Returns only when a fresher credential is worth a try (else JobStopped).
                await self._on_job_level_failure(outcome, credential)
                continue
            if outcome.kind is FailureKind.RATE_LIMITED and outcome.retry_after:
                # The provider's limit is spent for every caller, not just this one.
                await self._context.limiter.pause(credential.name, min(outcome.retry_after, _MAX_RETRY_AFTER_SECONDS))
            if not outcome.transient or attempt == self._policy.max_attempts:
                break
            if outcome.retry_after is not None and outcome.retry_after > _MAX_RETRY_AFTER_SECONDS:
                break
            await self._sleep(self._policy.delay(attempt, outcome.retry_after))
        assert last is not None
        return Failed(failure_reason(last.kind), last.message)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, cut short when the worker starts draining (the next attempt then gives up)."""
        deadline = time.monotonic() + seconds
        while not self._context.draining():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, _DRAIN_CHECK_SECONDS))

    async def _attempt(
        self, messages: list[dict[str, str]], n: int, seed_offset: int, *, first: bool
    ) -> tuple[Completion | ProviderFailure, credential_pb.ProviderCredential]:
        """Take capacity, make the call, give the capacity back; also returns the credential
        used. Raises _GaveUp instead of waiting long for the first call of a request, and
        whenever the worker drains before the call is granted."""
        if self._stopped:
            raise JobStopped(self._job.name)
        if first and self._give_up_wait is not None:
            raise _GaveUp(self._give_up_wait)  # another request of this message gave up: follow it
        credential = self._credential
        client = self._context.clients.get(credential)
        kind_label = _KIND_LABELS.get(credential.kind, "unknown")
        while True:
            try:
                lease = await self._context.limiter.acquire(
                    credential.name,
                    _limits(credential),
                    tokens=self._estimate_tokens(messages, n),
                    abort_key=self._stop_key,
                    calls_key=self._calls_key,
                    send_within_seconds=GRANT_SEND_WITHIN_SECONDS,
                    give_up_after=self._context.settings.capacity_wait_seconds if first else None,
                    interrupted=self._context.draining,
                )
            except LimiterAborted:
                self._stopped = True
                raise JobStopped(self._job.name) from None
            except NoCapacity as no_capacity:
                raise _GaveUp(no_capacity.retry_after) from None
            assert lease.send_by is not None
            if time.monotonic() <= lease.send_by:
                break
            # The loop was too busy to send it in time: a cancel may already have returned
            # on the strength of its send-by time, so this grant must go unused.
            self._context.limiter.release(lease, tokens_used=0)
        started = time.perf_counter()
        tokens_used: int | None = None
        outcome: Completion | ProviderFailure
        try:
            # The SDK's generic `post` rather than `chat.completions.create`: the same
            # client, auth, Azure deployment routing, timeouts and error classes, minus
            # create()'s type-driven transformation of the parameters and its pydantic
            # parsing of the reply - a third of the SDK's CPU per call, for a request we
            # build and four fields we read (`cast_to=object`: the decoded JSON).
            with span("chat.completions", SpanKind.CLIENT, provider=credential.name, provider_kind=kind_label, n=n):
                payload = await client.post(
                    "/chat/completions", body=self._request(credential, messages, n, seed_offset), cast_to=object
                )
            outcome = _completion(payload, time.perf_counter() - started)
            tokens_used = outcome.prompt_tokens + outcome.completion_tokens
        except Exception as error:  # noqa: BLE001 - every SDK failure is classified
            outcome = classify(
                error, azure=credential.kind == provider_pb.PROVIDER_KIND_AZURE_OPENAI, secrets=[credential.api_key]
            )
            # A timed-out call may still be billed: keep the estimate; refused ones cost nothing.
            tokens_used = None if outcome.kind is FailureKind.TIMEOUT else 0
        finally:
            self._context.limiter.release(lease, tokens_used=tokens_used)
        PROVIDER_REQUEST_SECONDS.labels(kind_label).observe(time.perf_counter() - started)
        PROVIDER_REQUESTS.labels(kind_label, "ok" if isinstance(outcome, Completion) else outcome.kind.value).inc()
        if isinstance(outcome, Completion) and not outcome.choices:
            outcome = ProviderFailure(FailureKind.BAD_RESPONSE, "the provider returned no choices")
        return outcome, credential

    async def _on_job_level_failure(self, failure: ProviderFailure, used: credential_pb.ProviderCredential) -> None:
        """Return to try again with a fresher credential, or fail the job and raise JobStopped."""
        async with self._job_failure_lock:
            if self._stopped:
                raise JobStopped(self._job.name)
            if self._credential.etag != used.etag:
                return  # another request of this range already picked up a new credential
            if not self._refreshed_credential:
                self._refreshed_credential = True
                try:
                    fresh = await self._context.credentials.refresh(self._job.provider)
                except ProviderMissing as missing:
                    fresh = None
                    failure = ProviderFailure(FailureKind.ERROR, str(missing))
                if fresh is not None and fresh.etag != used.etag:
                    self._credential = fresh
                    return
            self._stopped = True
            await _fail_job(self._context, self._job.name, failure_reason(failure.kind), failure.message)
            raise JobStopped(self._job.name)

    def _request(
        self, credential: credential_pb.ProviderCredential, messages: list[dict[str, str]], n: int, seed_offset: int
    ) -> dict:
        job = self._job
        request: dict = {
            "model": job.model or credential.model or credential.deployment,
            "messages": messages,
            "temperature": job.temperature,
        }
        if n > 1:
            request["n"] = n
        if job.max_output_tokens:
            # OpenAI-compatible servers (vLLM, llama.cpp, Ollama) know the older name.
            name = (
                "max_tokens"
                if credential.kind == provider_pb.PROVIDER_KIND_OPENAI_COMPATIBLE
                else "max_completion_tokens"
            )
            request[name] = job.max_output_tokens
        if self._labels:
            request["response_format"] = annotation.response_format(credential.structured_output, self._labels)
        if job.HasField("seed"):
            # One seed per request, not per job: requests of one prompt with the job's seed
            # would all get the same text. Still reproducible: it depends only on the slot.
            request["seed"] = (job.seed + seed_offset) % _SEED_RANGE
        return request

    def _estimate_tokens(self, messages: list[dict[str, str]], n: int) -> int:
        # ~4 characters per token for English, plus a few tokens of framing per message.
        prompt = sum(len(message["content"]) for message in messages) // 4 + 4 * len(messages)
        per_choice = self._job.max_output_tokens or self._context.settings.default_output_token_estimate
        return prompt + per_choice * n


def _limits(credential: credential_pb.ProviderCredential) -> Limits:
    limits = credential.limits
    return Limits(
        max_concurrent=max(0, limits.max_concurrent_requests),
        requests_per_minute=max(0, limits.requests_per_minute),
        tokens_per_minute=max(0, limits.tokens_per_minute),
    )


def _completion(payload: object, latency: float) -> Completion:
    """The useful part of a chat completion (JSON); raises ValueError when it has another
    shape (classified as BAD_RESPONSE)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise ValueError("no choices")
    parsed = []
    for choice in sorted(payload["choices"], key=lambda c: c.get("index") or 0 if isinstance(c, dict) else 0):
        if not isinstance(choice, dict):
            raise ValueError("a choice is not an object")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        parsed.append(Choice(content if isinstance(content, str) else "", str(choice.get("finish_reason") or "")))
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return Completion(
        choices=parsed,
        model=str(payload.get("model") or ""),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency_seconds=latency,
    )


def _token_shares(completion: Completion, count: int) -> list[tuple[int, int]]:
    """Split the request's prompt and completion tokens over the `count` texts kept, so
    that the job's sums stay exact."""
    if count == 0:
        return []
    prompt, prompt_rest = divmod(completion.prompt_tokens, count)
    done, done_rest = divmod(completion.completion_tokens, count)
    return [(prompt + (i < prompt_rest), done + (i < done_rest)) for i in range(count)]


def _failure(slot: int, failed: Failed) -> store_pb.SlotResult:
    return store_pb.SlotResult(slot=slot, failure=pb.JobError(reason=failed.reason, message=failed.message))
