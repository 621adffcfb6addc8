"""Calling LLM providers with the `openai` SDK: building clients from a credential and
classifying what went wrong. Shared by the registry (validation) and the workers
(generation) so both tell failures apart the same way."""

from services.provider_access.clients import ProviderEndpoint, async_client, sync_client
from services.provider_access.failures import FailureKind, ProviderFailure, classify, redact

__all__ = [
    "FailureKind",
    "ProviderEndpoint",
    "ProviderFailure",
    "async_client",
    "classify",
    "redact",
    "sync_client",
]
