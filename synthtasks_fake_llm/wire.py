"""The OpenAI and Azure OpenAI wire format as the fake speaks it: reading a chat
request, and the bodies of its replies and errors (shapes copied from the real APIs)."""

from __future__ import annotations

import math
import uuid
from typing import Any

from aiohttp import web

MAX_N = 128  # the most choices OpenAI accepts in one request
MODEL_CREATED = 1721172741  # the `created` OpenAI reports for gpt-4o-mini


def presented_key(request: web.Request, *, azure: bool) -> str | None:
    if azure and "api-key" in request.headers:
        return request.headers["api-key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def mask(key: str) -> str:
    return key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 10 else "*" * len(key)


async def read_chat_body(request: web.Request, *, require_model: bool) -> dict[str, Any] | web.Response:
    """The request body, or the 400 OpenAI gives for the few mistakes worth catching here."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return invalid_request("We could not parse the JSON body of your request.", param=None)
    if require_model and not isinstance(body.get("model"), str):
        return invalid_request("you must provide a model parameter", param="model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return invalid_request("'messages' must be a non-empty array.", param="messages")
    for name, high in (("n", MAX_N), ("max_tokens", math.inf), ("max_completion_tokens", math.inf)):
        value = body.get(name)
        if value is not None and not (isinstance(value, int) and 1 <= value <= high):
            return invalid_request(f"Invalid '{name}': {value!r} is not an integer in [1, {high}].", param=name)
    return body


def message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def last_user_text(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return " ".join(message_text((users or messages)[-1]).split())


def first_user_text(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return " ".join(message_text((users or messages)[0]).split())


def truncate(text: str, max_words: int | None) -> tuple[str, str]:
    """Cuts the reply at max_words (tokens are approximated by words) and reports why it ended."""
    words = text.split()
    if max_words is None or len(words) <= max_words:
        return text, "stop"
    return " ".join(words[:max_words]), "length"


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def model_entry(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


def openai_error(
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


def azure_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def invalid_request(message: str, *, param: str | None) -> web.Response:
    return openai_error(400, message, code=None, param=param)


def model_not_found(model: str) -> web.Response:
    return openai_error(
        404, f"The model '{model}' does not exist or you do not have access to it.", code="model_not_found"
    )


def missing_api_version() -> web.Response:
    return azure_error(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def rate_limited(seconds: float, model: str, *, azure: bool) -> web.Response:
    headers = {"Retry-After": f"{seconds:g}", "retry-after-ms": str(round(seconds * 1000))}
    if azure:
        return azure_error(
            429,
            "429",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded call rate "
            f"limit of your current OpenAI S0 pricing tier. Please retry after {math.ceil(seconds)} seconds.",
            headers,
        )
    return openai_error(
        429,
        f"Rate limit reached for {model} on requests per min (RPM). Please try again in {seconds:.3g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        kind="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


def server_error(*, azure: bool) -> web.Response:
    if azure:
        return azure_error(500, "InternalServerError", "The service is temporarily unable to process your request.")
    return openai_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        kind="server_error",
        code=None,
    )


def azure_content_filter() -> web.Response:
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
