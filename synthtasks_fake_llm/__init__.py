"""OpenAI-compatible HTTP server that stands in for LLM providers in tests, benchmarks
and the demo (`synthtasks demo --fake-llm`).

The code under test reaches providers only through the real ``openai`` SDK, so the
provider boundary is faked on the wire instead of by patching the SDK: auth headers,
retries, ``Retry-After`` handling, error bodies and response parsing all run for real.
The server speaks the OpenAI routes (``/v1/...``) and the Azure OpenAI deployment routes
(``/openai/deployments/{deployment}/...``), answers ``response_format`` (JSON schema and
JSON mode, structured.py) and can inject latency, faults, broken structured output and
its own requests-per-minute limit.

In-process (tests)::

    with FakeOpenAIServer(FakeConfig(api_keys={"sk-test"})) as server:
        client = OpenAI(base_url=server.openai_base_url, api_key="sk-test")

As a subprocess (benchmarks, so the server does not share the GIL with the measured code)::

    python -m synthtasks_fake_llm --port 0 --latency-ms 100 --key sk-test

prints ``LISTENING http://127.0.0.1:PORT``, serves until SIGTERM/SIGINT, and is driven over
``POST /_control/config`` (JSON of ``FakeConfig`` fields), ``GET /_control/stats[?window=S]``
and ``POST /_control/reset``.
"""

from synthtasks_fake_llm.config import FakeConfig, FakeStats
from synthtasks_fake_llm.server import HOST, FakeOpenAIServer

__all__ = ["HOST", "FakeConfig", "FakeOpenAIServer", "FakeStats"]
