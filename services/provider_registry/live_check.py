"""The live check behind ValidateProvider and TestProviderConnection: the cheapest call
that proves the key works for the configured model or deployment.

- OpenAI: retrieve the model (`GET /v1/models/{model}`): no tokens spent.
- OpenAI-compatible: list the models (`GET /v1/models`) and look for the model; many
  servers (llama.cpp, Ollama) have no retrieve endpoint.
- Azure OpenAI: a one-token chat completion on the deployment; Azure has no cheaper call
  that proves a key works for one deployment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import openai
from synthtasks.v1 import provider_service_pb2 as pb

from services.provider_access import FailureKind, ProviderEndpoint, classify, sync_client
from services.vocabulary.quoting import quoted

_STATE_OF = {
    FailureKind.INVALID_KEY: pb.VALIDATION_STATE_INVALID_KEY,
    FailureKind.ENDPOINT_UNREACHABLE: pb.VALIDATION_STATE_ENDPOINT_UNREACHABLE,
    FailureKind.DEPLOYMENT_NOT_FOUND: pb.VALIDATION_STATE_DEPLOYMENT_NOT_FOUND,
    FailureKind.MODEL_NOT_FOUND: pb.VALIDATION_STATE_MODEL_NOT_FOUND,
    FailureKind.RATE_LIMITED: pb.VALIDATION_STATE_RATE_LIMITED,
    FailureKind.TIMEOUT: pb.VALIDATION_STATE_TIMEOUT,
}


@dataclass(frozen=True)
class CheckResult:
    state: pb.ValidationState
    message: str
    latency_ms: int


def _probe(client: openai.OpenAI, endpoint: ProviderEndpoint) -> str:
    if endpoint.is_azure:
        client.chat.completions.create(
            model=endpoint.deployment,
            messages=[{"role": "user", "content": "ping"}],
            max_tokens=1,
        )
        return f"deployment {endpoint.deployment} answered"
    if endpoint.kind == pb.PROVIDER_KIND_OPENAI_COMPATIBLE:
        available = [m.id for m in client.models.list()]
        if endpoint.model not in available:
            shown = ", ".join(quoted(str(model)) for model in available[:10]) or "none"
            raise _ModelMissing(f"model {quoted(endpoint.model)} is not served here (available: {shown})")
        return f"model {endpoint.model} is served"
    client.models.retrieve(endpoint.model)
    return f"model {endpoint.model} is available"


class _ModelMissing(Exception):
    pass


def check_connection(endpoint: ProviderEndpoint, *, timeout: float) -> CheckResult:
    started = time.perf_counter()
    try:
        with sync_client(endpoint, timeout=timeout) as client:
            message = _probe(client, endpoint)
        state = pb.VALIDATION_STATE_VALID
    except _ModelMissing as missing:
        state, message = pb.VALIDATION_STATE_MODEL_NOT_FOUND, str(missing)
    except Exception as error:  # noqa: BLE001 - every failure is a validation outcome
        failure = classify(error, azure=endpoint.is_azure, secrets=[endpoint.api_key])
        state = _STATE_OF.get(failure.kind, pb.VALIDATION_STATE_ERROR)
        message = failure.message
    return CheckResult(state, message, round((time.perf_counter() - started) * 1000))
