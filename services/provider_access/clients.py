"""SDK clients for the three provider kinds.

Retries are off in the SDK (`max_retries=0`): validation must answer fast, and workers
retry themselves under the shared rate limits instead of behind the SDK's back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import openai
from synthtasks.v1 import provider_service_pb2 as provider_pb

# OpenAI-compatible servers (llama.cpp, vLLM, Ollama) often need no key, but the SDK
# refuses an empty one.
_PLACEHOLDER_KEY = "no-key"


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where and how to reach one provider. `api_key` is excluded from repr so that a
    logged or raised endpoint never shows it."""

    kind: int
    endpoint: str = ""
    deployment: str = ""
    api_version: str = ""
    model: str = ""
    organization: str = ""
    api_key: str = field(default="", repr=False)

    @classmethod
    def of(cls, source: Any) -> ProviderEndpoint:
        """From anything with the provider's field names: a Provider or ProviderCredential
        message, or the registry's ProviderRecord."""
        return cls(**{name: getattr(source, name) for name in _FIELDS})

    @property
    def is_azure(self) -> bool:
        return self.kind == provider_pb.PROVIDER_KIND_AZURE_OPENAI


_FIELDS = tuple(f.name for f in fields(ProviderEndpoint))


def _kwargs(endpoint: ProviderEndpoint, timeout: float) -> dict:
    common = {"api_key": endpoint.api_key or _PLACEHOLDER_KEY, "timeout": timeout, "max_retries": 0}
    if endpoint.is_azure:
        return {
            **common,
            "azure_endpoint": endpoint.endpoint,
            "azure_deployment": endpoint.deployment,
            "api_version": endpoint.api_version,
        }
    base = {**common, "organization": endpoint.organization or None}
    if endpoint.endpoint:
        base["base_url"] = endpoint.endpoint
    return base


def sync_client(endpoint: ProviderEndpoint, *, timeout: float) -> openai.OpenAI:
    """For live checks. The SDK follows redirects by default; a check must not, or an
    endpoint that passed the address rules could send it anywhere (cloud metadata)."""
    kwargs = {**_kwargs(endpoint, timeout), "http_client": openai.DefaultHttpxClient(follow_redirects=False)}
    if endpoint.is_azure:
        return openai.AzureOpenAI(**kwargs)
    return openai.OpenAI(**kwargs)


def async_client(
    endpoint: ProviderEndpoint, *, timeout: float, aiohttp: bool = False, max_connections: int | None = None
) -> openai.AsyncOpenAI:
    """`aiohttp`: the SDK's aiohttp transport instead of its default httpx one.
    `max_connections`: the pool's size instead of the SDK's (1,000)."""
    kwargs = _kwargs(endpoint, timeout)
    # The SDK's own limits type (httpx's Limits), with only the pool size changed.
    limits = openai.DEFAULT_CONNECTION_LIMITS
    if max_connections is not None:
        limits = type(limits)(max_connections=max_connections, max_keepalive_connections=max_connections)
    if aiohttp:
        kwargs["http_client"] = openai.DefaultAioHttpClient(limits=limits)
    elif max_connections is not None:
        kwargs["http_client"] = openai.DefaultAsyncHttpxClient(limits=limits)
    if endpoint.is_azure:
        return openai.AsyncAzureOpenAI(**kwargs)
    return openai.AsyncOpenAI(**kwargs)
