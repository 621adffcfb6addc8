"""OpenAI-compatible HTTP server that stands in for LLM providers in tests and benchmarks.

The code under test reaches providers only through the real ``openai`` SDK, so the
provider boundary is faked on the wire instead of by patching the SDK: auth headers,
retries, ``Retry-After`` handling, error bodies and response parsing all run for real.
The server speaks the OpenAI routes (``/v1/...``) and the Azure OpenAI deployment routes
(``/openai/deployments/{deployment}/...``) and can inject latency, faults and its own
requests-per-minute limit.

In-process (tests)::

    with FakeOpenAIServer(FakeConfig(api_keys={"sk-test"})) as server:
        client = OpenAI(base_url=server.openai_base_url, api_key="sk-test")

As a subprocess (benchmarks, so the server does not share the GIL with the measured code)::

    python -m tests.fakes.openai_server --port 0 --latency-ms 100 --key sk-test

prints ``LISTENING http://127.0.0.1:PORT``, serves until SIGTERM/SIGINT, and is driven over
``POST /_control/config`` (JSON of ``FakeConfig`` fields), ``GET /_control/stats[?window=S]``
and ``POST /_control/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import functools
import itertools
import json
import math
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

HOST = "127.0.0.1"
RPM_WINDOW_SECONDS = 60.0
MAX_N = 128  # the most choices OpenAI accepts in one request
# Long enough for in-flight replies to finish, short enough that a hanging fault cannot stall stop().
_SHUTDOWN_GRACE_SECONDS = 0.5
_MODEL_CREATED = 1721172741  # the `created` OpenAI reports for gpt-4o-mini
_SYSTEM_FINGERPRINT = "fp_fake0openai"
# Checked in this order against one uniform draw, so earlier kinds win when rates sum past 1.
_FAULT_FIELDS = ("rate_429", "rate_500", "rate_timeout", "rate_wrong_shape", "rate_content_filter", "rate_no_quota")
_PHRASES = (
    "the patient reported feeling steadier after the second visit",
    "the customer asked whether the order could ship before Friday",
    "our team reviewed the quarterly numbers and found a small gap",
    "the engineer noticed the nightly backup finished late again",
    "a traveller described the quiet harbour town at sunrise",
    "the teacher suggested a shorter reading list for the term",
    "the support agent confirmed the refund would arrive within a week",
)
_T = TypeVar("_T")


@dataclass
class FakeConfig:
    """How the fake provider behaves; any field can be changed while it runs.

    ``api_keys`` empty means no auth, like a local vLLM or llama.cpp server.
    ``reported_model_suffix`` is appended to the model in replies, as OpenAI reports a
    dated snapshot. ``deployments`` maps Azure deployment names to models. Each ``rate_*``
    is the probability that a chat completion gets that fault, drawn from
    ``random.Random(seed)`` so a run is reproducible. ``rpm_limit`` is the server's own
    limit over a sliding 60 s window. ``honor_n=False`` answers one choice whatever ``n``
    is, like llama.cpp. ``distinct_replies`` makes replies cycle over that many texts so
    duplicates occur; otherwise every reply is unique for the server's life.
    ``echo_key_in_errors`` puts the full presented key in the OpenAI 401 message (OpenAI
    echoes a masked one) so tests can prove our code redacts it.
    """

    api_keys: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=lambda: {"gpt-4o-mini"})
    reported_model_suffix: str = "-2024-07-18"
    deployments: dict[str, str] = field(default_factory=lambda: {"gpt4o-deploy": "gpt-4o-mini"})
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after_seconds: float = 0.2
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    hang_seconds: float = 30.0
    rate_wrong_shape: float = 0.0
    rate_content_filter: float = 0.0
    # 429 insufficient_quota: the account is out of credit (no Retry-After; retrying is futile).
    rate_no_quota: float = 0.0
    rpm_limit: int | None = None
    honor_n: bool = True
    distinct_replies: int | None = None
    fixed_reply: str | None = None
    echo_key_in_errors: bool = True
    # Also inject 429/500/timeout faults on the model routes (what validation calls).
    faults_on_models: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        # Copying means callers never share mutable state with the running server;
        # converting also accepts the JSON lists sent to /_control/config.
        self.api_keys = set(self.api_keys)
        self.models = set(self.models)
        self.deployments = dict(self.deployments)
        for name in _FAULT_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        for name in ("rpm_limit", "distinct_replies"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 or None")


@dataclass
class FakeStats:
    """What the server saw, as a snapshot for assertions and benchmark reports.

    ``completions_served``/``choices_served`` count replies carrying generated text;
    ``limit_429s`` come from ``rpm_limit``, ``injected_429s`` from ``rate_429``.
    ``in_flight`` is the number of chat completions being answered when the snapshot was
    taken; it returns to 0 once clients that gave up have been noticed.
    ``arrivals`` holds the ``time.monotonic()`` of every chat-completion request,
    ``seeds`` the ``seed`` of every well-formed one that sent it.
    """

    requests_by_route: dict[str, int] = field(default_factory=dict)
    completions_served: int = 0
    choices_served: int = 0
    injected_429s: int = 0
    limit_429s: int = 0
    errors_500: int = 0
    timeouts: int = 0
    wrong_shapes: int = 0
    content_filtered: int = 0
    quota_429s: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    keys_seen_bad: int = 0
    arrivals: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def requests_per_window(self, window_seconds: float) -> int:
        """Most chat-completion arrivals inside any window of that length, to check client-side rate limits."""
        best = start = 0
        for end, arrived in enumerate(self.arrivals):
            while arrived - self.arrivals[start] >= window_seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


class _FakeProvider:
    """State and request handlers; used only from the event loop that serves them, so no locks."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.stats = FakeStats()
        self._fault_rng = random.Random(config.seed)
        self._latency_rng = random.Random(config.seed)
        self._rpm_window: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._reply_numbers = itertools.count(1)

    def configure(self, **fields: Any) -> FakeConfig:
        self.config = dataclasses.replace(self.config, **fields)
        if "seed" in fields:
            self._reseed()
        return self.config

    def reset(self) -> None:
        """Back to a fresh server, except reply numbering, which stays unique for the server's life."""
        self.stats = FakeStats()
        self._rpm_window.clear()
        self._reseed()

    def snapshot(self) -> FakeStats:
        return dataclasses.replace(
            self.stats,
            requests_by_route=dict(self.stats.requests_by_route),
            arrivals=list(self.stats.arrivals),
            seeds=list(self.stats.seeds),
            in_flight=self._in_flight,  # kept outside the stats so a reset mid-request cannot unbalance it
        )

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_and_tag])
        app.add_routes(
            [
                web.get("/v1/models", self._list_models),
                web.get("/v1/models/{model}", self._retrieve_model),
                web.post("/v1/chat/completions", self._openai_chat),
                web.get("/openai/models", self._azure_list_models),
                web.post("/openai/deployments/{deployment}/chat/completions", self._azure_chat),
                web.post("/_control/config", self._control_config),
                web.get("/_control/stats", self._control_stats),
                web.post("/_control/reset", self._control_reset),
            ]
        )
        return app

    def _reseed(self) -> None:
        self._fault_rng.seed(self.config.seed)
        self._latency_rng.seed(self.config.seed)

    @web.middleware
    async def _count_and_tag(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Counts provider requests by route and answers unknown URLs the way OpenAI does."""
        resource = request.match_info.route.resource
        if resource is not None and not resource.canonical.startswith("/_control/"):
            route = f"{request.method} {resource.canonical}"
            self.stats.requests_by_route[route] = self.stats.requests_by_route.get(route, 0) + 1
        try:
            response = await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            response = _openai_error(404, f"Invalid URL ({request.method} {request.path})", code=None)
        # The SDK exposes this as `request_id` on errors; real providers always send it.
        response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
        return response

    # --- model routes -------------------------------------------------------------

    async def _model_route_fault(self, cfg: FakeConfig) -> web.Response | None:
        """With `faults_on_models`, the chat faults that make sense for a GET."""
        if not cfg.faults_on_models:
            return None
        fault = self._draw_fault(cfg)
        if fault == "rate_429":
            self.stats.injected_429s += 1
            return _rate_limited(cfg.retry_after_seconds, "models", azure=False)
        if fault == "rate_500":
            self.stats.errors_500 += 1
            return _server_error(azure=False)
        if fault == "rate_timeout":
            self.stats.timeouts += 1
            await asyncio.sleep(cfg.hang_seconds)
        return None

    async def _list_models(self, request: web.Request) -> web.Response:
        if (denied := self._deny_bad_key(request, self.config, azure=False)) is not None:
            return denied
        if (faulted := await self._model_route_fault(self.config)) is not None:
            return faulted
        return web.json_response({"object": "list", "data": [_model(m) for m in sorted(self.config.models)]})

    async def _retrieve_model(self, request: web.Request) -> web.Response:
        if (denied := self._deny_bad_key(request, self.config, azure=False)) is not None:
            return denied
        if (faulted := await self._model_route_fault(self.config)) is not None:
            return faulted
        model = request.match_info["model"]
        if model not in self.config.models:
            return _model_not_found(model)
        return web.json_response(_model(model))

    async def _azure_list_models(self, request: web.Request) -> web.Response:
        """Lets callers validate Azure credentials without spending a completion."""
        if "api-version" not in request.query:
            return _missing_api_version()
        if (denied := self._deny_bad_key(request, self.config, azure=True)) is not None:
            return denied
        models = sorted(set(self.config.deployments.values()))
        return web.json_response({"object": "list", "data": [_model(m) for m in models]})

    # --- chat completions -----------------------------------------------------------

    async def _openai_chat(self, request: web.Request) -> web.Response:
        return await self._chat(request, azure=False)

    async def _azure_chat(self, request: web.Request) -> web.Response:
        return await self._chat(request, azure=True)

    async def _chat(self, request: web.Request, *, azure: bool) -> web.Response:
        self.stats.arrivals.append(time.monotonic())
        self._in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        try:
            return await self._answer_chat(request, azure=azure)
        finally:  # also runs when aiohttp cancels the handler because the client hung up
            self._in_flight -= 1

    async def _answer_chat(self, request: web.Request, *, azure: bool) -> web.Response:
        cfg = self.config  # one consistent view even if reconfigured mid-request
        if azure and "api-version" not in request.query:
            return _missing_api_version()
        if (denied := self._deny_bad_key(request, cfg, azure=azure)) is not None:
            return denied
        if azure and request.match_info["deployment"] not in cfg.deployments:
            return _azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.",
            )
        body = await _read_chat_body(request, require_model=not azure)
        if isinstance(body, web.Response):
            return body
        if "seed" in body:
            self.stats.seeds.append(body["seed"])
        model = cfg.deployments[request.match_info["deployment"]] if azure else body["model"]
        if not azure and model not in cfg.models:
            return _model_not_found(model)
        if (wait := self._take_rpm_slot(cfg)) is not None:
            self.stats.limit_429s += 1
            return _rate_limited(wait, model, azure=azure)
        await self._sleep_latency(cfg)
        fault = self._draw_fault(cfg)
        if fault == "rate_429":
            self.stats.injected_429s += 1
            return _rate_limited(cfg.retry_after_seconds, model, azure=azure)
        if fault == "rate_500":
            self.stats.errors_500 += 1
            return _server_error(azure=azure)
        if fault == "rate_timeout":
            self.stats.timeouts += 1
            await asyncio.sleep(cfg.hang_seconds)  # cancelled with the handler if the client gives up
        if fault == "rate_wrong_shape":
            self.stats.wrong_shapes += 1
            return web.json_response({"id": _completion_id(), "object": "chat.completion", "result": "ok"})
        if fault == "rate_content_filter":
            self.stats.content_filtered += 1
            if azure:
                return _azure_content_filter()
        if fault == "rate_no_quota":
            self.stats.quota_429s += 1
            return _openai_error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                kind="insufficient_quota",
                code="insufficient_quota",
            )
        return self._completion(cfg, body, model, filtered=fault == "rate_content_filter")

    def _deny_bad_key(self, request: web.Request, cfg: FakeConfig, *, azure: bool) -> web.Response | None:
        key = _presented_key(request, azure=azure)
        if not cfg.api_keys or key in cfg.api_keys:
            return None
        self.stats.keys_seen_bad += 1
        if azure:
            return _azure_error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your resource.",
            )
        if not key:
            return _openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        shown = key if cfg.echo_key_in_errors else _mask(key)
        return _openai_error(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def _take_rpm_slot(self, cfg: FakeConfig) -> float | None:
        """Admits the request (None) or returns the seconds until a slot in the 60 s window frees."""
        if cfg.rpm_limit is None:
            return None
        now = time.monotonic()
        while self._rpm_window and now - self._rpm_window[0] >= RPM_WINDOW_SECONDS:
            self._rpm_window.popleft()
        if len(self._rpm_window) >= cfg.rpm_limit:
            # Indexing from the end stays right if the limit was lowered while the window was full.
            return self._rpm_window[-cfg.rpm_limit] + RPM_WINDOW_SECONDS - now
        self._rpm_window.append(now)
        return None

    async def _sleep_latency(self, cfg: FakeConfig) -> None:
        jitter = cfg.latency_jitter_ms
        delay_ms = cfg.latency_ms + (self._latency_rng.uniform(-jitter, jitter) if jitter else 0.0)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def _draw_fault(self, cfg: FakeConfig) -> str | None:
        """One draw per request whatever the rates, so a seed fixes the whole fault sequence."""
        draw = self._fault_rng.random()
        threshold = 0.0
        for name in _FAULT_FIELDS:
            threshold += getattr(cfg, name)
            if draw < threshold:
                return name
        return None

    def _completion(self, cfg: FakeConfig, body: dict[str, Any], model: str, *, filtered: bool) -> web.Response:
        messages = body["messages"]
        topic = _last_user_text(messages)[:40].rstrip()
        max_words = body.get("max_completion_tokens") or body.get("max_tokens")
        n = (body.get("n") or 1) if cfg.honor_n else 1
        if filtered:
            replies = [("", "content_filter")] * n
        else:
            replies = [_truncate(self._reply_text(cfg, topic), max_words) for _ in range(n)]
            self.stats.completions_served += 1
            self.stats.choices_served += n
        choices: list[dict[str, Any]] = [
            {
                "index": index,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }
            for index, (text, finish) in enumerate(replies)
        ]
        prompt_tokens = sum(len(_message_text(m).split()) for m in messages)
        completion_tokens = sum(len(text.split()) for text, _ in replies)
        return web.json_response(
            {
                "id": _completion_id(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model + cfg.reported_model_suffix,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
                "service_tier": "default",
                "system_fingerprint": _SYSTEM_FINGERPRINT,
            }
        )

    def _reply_text(self, cfg: FakeConfig, topic: str) -> str:
        if cfg.fixed_reply is not None:
            return cfg.fixed_reply
        number = next(self._reply_numbers)
        if cfg.distinct_replies is not None:
            number %= cfg.distinct_replies
            return f"Sample {number}: {_PHRASES[number % len(_PHRASES)]}."
        about = f", writing about {topic}" if topic else ""
        return f"Sample {number}: {_PHRASES[number % len(_PHRASES)]}{about}."

    # --- control routes (for the subprocess mode) ------------------------------------

    async def _control_config(self, request: web.Request) -> web.Response:
        try:
            config = self.configure(**await request.json())
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        return web.json_response(dataclasses.asdict(config), dumps=functools.partial(json.dumps, default=sorted))

    async def _control_stats(self, request: web.Request) -> web.Response:
        """Stats as JSON; ``arrivals`` is left out (it grows without bound), ``?window=S`` adds its peak count."""
        stats = self.snapshot()
        payload = dataclasses.asdict(stats)
        del payload["arrivals"], payload["seeds"]
        if "window" in request.query:
            payload["requests_per_window"] = stats.requests_per_window(float(request.query["window"]))
        return web.json_response(payload)

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def _presented_key(request: web.Request, *, azure: bool) -> str | None:
    if azure and "api-key" in request.headers:
        return request.headers["api-key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _mask(key: str) -> str:
    return key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 10 else "*" * len(key)


async def _read_chat_body(request: web.Request, *, require_model: bool) -> dict[str, Any] | web.Response:
    """The request body, or the 400 OpenAI gives for the few mistakes worth catching here."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _invalid_request("We could not parse the JSON body of your request.", param=None)
    if require_model and not isinstance(body.get("model"), str):
        return _invalid_request("you must provide a model parameter", param="model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _invalid_request("'messages' must be a non-empty array.", param="messages")
    for name, high in (("n", MAX_N), ("max_tokens", math.inf), ("max_completion_tokens", math.inf)):
        value = body.get(name)
        if value is not None and not (isinstance(value, int) and 1 <= value <= high):
            return _invalid_request(f"Invalid '{name}': {value!r} is not an integer in [1, {high}].", param=name)
    return body


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _last_user_text(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return " ".join(_message_text((users or messages)[-1]).split())


def _truncate(text: str, max_words: int | None) -> tuple[str, str]:
    """Cuts the reply at max_words (tokens are approximated by words) and reports why it ended."""
    words = text.split()
    if max_words is None or len(words) <= max_words:
        return text, "stop"
    return " ".join(words[:max_words]), "length"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def _openai_error(
    status: int,
    message: str,
    *,
    code: str | None,
    kind: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error = {"message": message, "type": kind, "param": param, "code": code}
    return web.json_response({"error": error}, status=status, headers=headers)


def _azure_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _invalid_request(message: str, *, param: str | None) -> web.Response:
    return _openai_error(400, message, code=None, param=param)


def _model_not_found(model: str) -> web.Response:
    return _openai_error(
        404, f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found"
    )


def _missing_api_version() -> web.Response:
    return _azure_error(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def _rate_limited(seconds: float, model: str, *, azure: bool) -> web.Response:
    headers = {"Retry-After": f"{seconds:g}", "retry-after-ms": str(round(seconds * 1000))}
    if azure:
        return _azure_error(
            429,
            "429",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded call rate "
            f"limit of your current OpenAI S0 pricing tier. Please retry after {math.ceil(seconds)} seconds.",
            headers,
        )
    return _openai_error(
        429,
        f"Rate limit reached for {model} on requests per min (RPM). Please try again in {seconds:.3g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        kind="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def _server_error(*, azure: bool) -> web.Response:
    if azure:
        return _azure_error(500, "InternalServerError", "The service is temporarily unable to process your request.")
    return _openai_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        kind="server_error",
        code=None,
    )


def _azure_content_filter() -> web.Response:
    error = {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
        "policy. Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation"},
    }
    return web.json_response({"error": error}, status=400)


async def _start_site(provider: _FakeProvider, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        provider.make_app(),
        access_log=None,
        handler_cancellation=True,  # a client that times out must not leave its handler hanging
        shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
    )
    await runner.setup()
    await web.TCPSite(runner, HOST, port, backlog=1024).start()
    return runner, runner.addresses[0][1]


class FakeOpenAIServer:
    """The fake provider on its own event loop in a daemon thread, bound to 127.0.0.1 only."""

    def __init__(self, config: FakeConfig | None = None, *, port: int = 0) -> None:
        self._provider = _FakeProvider(config or FakeConfig())
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Root URL; what AzureOpenAI takes as azure_endpoint."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What OpenAI/AsyncOpenAI take as base_url."""
        return self.base_url + "/v1"

    @property
    def config(self) -> FakeConfig:
        return self._provider.config

    def start(self) -> FakeOpenAIServer:
        if self._loop is not None:
            raise RuntimeError("FakeOpenAIServer is already started")
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fake-openai-server", daemon=True)
        self._thread.start()
        self._loop = loop
        try:
            self._runner, self._port = self._run(_start_site(self._provider, self._requested_port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop
        try:
            if self._runner is not None:
                self._run(self._runner.cleanup())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()
            self._loop = self._thread = self._runner = self._port = None

    def configure(self, **fields: Any) -> FakeConfig:
        """Changes config fields (e.g. ``rate_429=1.0``) for the following requests; returns the new config."""
        return self._on_loop(lambda: self._provider.configure(**fields))

    def reset_stats(self) -> None:
        """Zeroes the stats, empties the rpm window and reseeds the fault draws."""
        self._on_loop(self._provider.reset)

    def stats(self) -> FakeStats:
        return self._on_loop(self._provider.snapshot)

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        """Touches provider state on the server's loop so handlers never see a half-applied change."""
        if self._loop is None:
            return fn()

        async def call() -> _T:
            return fn()

        return self._run(call())


def _parse_args(argv: list[str] | None) -> tuple[FakeConfig, int]:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.openai_server",
        description="OpenAI-compatible fake provider; other settings via POST /_control/config.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--key", action="append", help="accepted API key, repeatable; none means no auth")
    parser.add_argument("--model", action="append", help="known model, repeatable (default gpt-4o-mini)")
    parser.add_argument("--deployment", action="append", metavar="NAME=MODEL", help="Azure deployment, repeatable")
    for name in ("latency_ms", "latency_jitter_ms", "retry_after_seconds", "hang_seconds", *_FAULT_FIELDS):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=float)
    for name in ("rpm_limit", "distinct_replies", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=int)
    parser.add_argument("--no-honor-n", dest="honor_n", action="store_false", default=None)
    args = parser.parse_args(argv)
    field_names = {f.name for f in dataclasses.fields(FakeConfig)}
    fields = {name: value for name, value in vars(args).items() if name in field_names and value is not None}
    if args.key:
        fields["api_keys"] = set(args.key)
    if args.model:
        fields["models"] = set(args.model)
    if args.deployment:
        fields["deployments"] = dict(item.split("=", 1) for item in args.deployment)
    return FakeConfig(**fields), args.port


async def _serve_until_signalled(config: FakeConfig, port: int) -> None:
    runner, bound_port = await _start_site(_FakeProvider(config), port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    print(f"LISTENING http://{HOST}:{bound_port}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Subprocess entry point: serve until SIGTERM/SIGINT."""
    config, port = _parse_args(argv)
    asyncio.run(_serve_until_signalled(config, port))


if __name__ == "__main__":
    main()
