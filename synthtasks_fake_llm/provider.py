"""The fake provider's behaviour: its routes, faults, limits and replies, and the
control routes that drive it from another process."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import json
import random
import time
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from synthtasks_fake_llm import structured, wire
from synthtasks_fake_llm.config import FAULT_FIELDS, FakeConfig, FakeStats

RPM_WINDOW_SECONDS = 60.0
_SYSTEM_FINGERPRINT = "fp_fake0openai"
_PHRASES = (
    "the patient reported feeling steadier after the second visit",
    "the customer asked whether the order could ship before Friday",
    "our team reviewed the quarterly numbers and found a small gap",
    "the engineer noticed the nightly backup finished late again",
    "a traveller described the quiet harbour town at sunrise",
    "the teacher suggested a shorter reading list for the term",
    "the support agent confirmed the refund would arrive within a week",
)


class FakeProvider:
    """State and request handlers; used only from the event loop that serves them, so no locks."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.stats = FakeStats()
        self._fault_rng = random.Random(config.seed)
        self._latency_rng = random.Random(config.seed)
        self._rpm_window: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._reply_numbers = itertools.count(1)
        self._structured_faults_left = config.structured_fault_count

    def configure(self, **fields: Any) -> FakeConfig:
        self.config = dataclasses.replace(self.config, **fields)
        if "seed" in fields:
            self._reseed()
        if "structured_fault" in fields or "structured_fault_count" in fields:
            self._structured_faults_left = self.config.structured_fault_count
        return self.config

    def reset(self) -> None:
        """Back to a fresh server, except reply numbering, which stays unique for the server's life."""
        self.stats = FakeStats()
        self._rpm_window.clear()
        self._reseed()
        self._structured_faults_left = self.config.structured_fault_count

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
            response = wire.openai_error(404, f"Invalid URL ({request.method} {request.path})", code=None)
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
            return wire.rate_limited(cfg.retry_after_seconds, "models", azure=False)
        if fault == "rate_500":
            self.stats.errors_500 += 1
            return wire.server_error(azure=False)
        if fault == "rate_timeout":
            self.stats.timeouts += 1
            await asyncio.sleep(cfg.hang_seconds)
        return None

    async def _list_models(self, request: web.Request) -> web.Response:
        if (denied := self._deny_bad_key(request, self.config, azure=False)) is not None:
            return denied
        if (faulted := await self._model_route_fault(self.config)) is not None:
            return faulted
        return web.json_response({"object": "list", "data": [wire.model_entry(m) for m in sorted(self.config.models)]})

    async def _retrieve_model(self, request: web.Request) -> web.Response:
        if (denied := self._deny_bad_key(request, self.config, azure=False)) is not None:
            return denied
        if (faulted := await self._model_route_fault(self.config)) is not None:
            return faulted
        model = request.match_info["model"]
        if model not in self.config.models:
            return wire.model_not_found(model)
        return web.json_response(wire.model_entry(model))

    async def _azure_list_models(self, request: web.Request) -> web.Response:
        """Lets callers validate Azure credentials without spending a completion."""
        if "api-version" not in request.query:
            return wire.missing_api_version()
        if (denied := self._deny_bad_key(request, self.config, azure=True)) is not None:
            return denied
        models = sorted(set(self.config.deployments.values()))
        return web.json_response({"object": "list", "data": [wire.model_entry(m) for m in models]})

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
            return wire.missing_api_version()
        if (denied := self._deny_bad_key(request, cfg, azure=azure)) is not None:
            return denied
        if azure and request.match_info["deployment"] not in cfg.deployments:
            return wire.azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment "
                "within the last 5 minutes, please wait a moment and try again.",
            )
        body = await wire.read_chat_body(request, require_model=not azure)
        if isinstance(body, web.Response):
            return body
        if (refused := structured.response_format_error(body)) is not None:
            return refused
        if "seed" in body:
            self.stats.seeds.append(body["seed"])
        model = cfg.deployments[request.match_info["deployment"]] if azure else body["model"]
        if not azure and model not in cfg.models:
            return wire.model_not_found(model)
        if (wait := self._take_rpm_slot(cfg)) is not None:
            self.stats.limit_429s += 1
            return wire.rate_limited(wait, model, azure=azure)
        await self._sleep_latency(cfg)
        fault = self._draw_fault(cfg)
        if fault == "rate_429":
            self.stats.injected_429s += 1
            return wire.rate_limited(cfg.retry_after_seconds, model, azure=azure)
        if fault == "rate_500":
            self.stats.errors_500 += 1
            return wire.server_error(azure=azure)
        if fault == "rate_timeout":
            self.stats.timeouts += 1
            await asyncio.sleep(cfg.hang_seconds)  # cancelled with the handler if the client gives up
        if fault == "rate_wrong_shape":
            self.stats.wrong_shapes += 1
            return web.json_response({"id": wire.completion_id(), "object": "chat.completion", "result": "ok"})
        if fault == "rate_content_filter":
            self.stats.content_filtered += 1
            if azure:
                return wire.azure_content_filter()
        if fault == "rate_no_quota":
            self.stats.quota_429s += 1
            return wire.openai_error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                kind="insufficient_quota",
                code="insufficient_quota",
            )
        return self._completion(cfg, body, model, filtered=fault == "rate_content_filter")

    def _deny_bad_key(self, request: web.Request, cfg: FakeConfig, *, azure: bool) -> web.Response | None:
        key = wire.presented_key(request, azure=azure)
        if not cfg.api_keys or key in cfg.api_keys:
            return None
        self.stats.keys_seen_bad += 1
        if azure:
            return wire.azure_error(
                401,
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your resource.",
            )
        if not key:
            return wire.openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        shown = key if cfg.echo_key_in_errors else wire.mask(key)
        return wire.openai_error(
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
        for name in FAULT_FIELDS:
            threshold += getattr(cfg, name)
            if draw < threshold:
                return name
        return None

    def _completion(self, cfg: FakeConfig, body: dict[str, Any], model: str, *, filtered: bool) -> web.Response:
        messages = body["messages"]
        topic = wire.last_user_text(messages)[:40].rstrip()
        max_words = body.get("max_completion_tokens") or body.get("max_tokens")
        n = (body.get("n") or 1) if cfg.honor_n else 1
        if filtered:
            replies = [("", "content_filter")] * n
        elif structured.wants_structured(body):
            # The whole task goes in the text, so that every variable value it holds can be an
            # entity; the first user message, as a repair request comes after it.
            prompt = wire.first_user_text(messages)
            replies = [wire.truncate(self._structured_reply(cfg, prompt, body), max_words) for _ in range(n)]
        else:
            replies = [wire.truncate(self._reply_text(cfg, topic), max_words) for _ in range(n)]
        if not filtered:
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
        prompt_tokens = sum(len(wire.message_text(m).split()) for m in messages)
        completion_tokens = sum(len(text.split()) for text, _ in replies)
        return web.json_response(
            {
                "id": wire.completion_id(),
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

    def _structured_reply(self, cfg: FakeConfig, prompt: str, body: dict[str, Any]) -> str:
        fault = None
        if cfg.structured_fault is not None and self._structured_faults_left != 0:
            fault = cfg.structured_fault
            self.stats.structured_faults += 1
            if self._structured_faults_left is not None:
                self._structured_faults_left -= 1
        self.stats.structured_served += 1
        return structured.annotated_reply(self._reply_text(cfg, prompt), prompt, cfg.entity_lexicon, body, fault)

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
