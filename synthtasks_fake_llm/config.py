"""What the fake provider is told (FakeConfig) and what it reports (FakeStats)."""

from __future__ import annotations

from dataclasses import dataclass, field

from synthtasks_fake_llm.structured import STRUCTURED_FAULTS

# Checked in this order against one uniform draw, so earlier kinds win when rates sum past 1.
FAULT_FIELDS = ("rate_429", "rate_500", "rate_timeout", "rate_wrong_shape", "rate_content_filter", "rate_no_quota")


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

    Structured output (``response_format``, structured.py): ``entity_lexicon`` maps
    surface texts to labels; those found in the user prompt are the reply's entities.
    ``structured_fault`` (one of ``STRUCTURED_FAULTS``) breaks every structured choice,
    or only the next ``structured_fault_count`` ones when that is set, so a test can
    have a first reply malformed and the repair succeed.
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
    entity_lexicon: dict[str, str] = field(default_factory=dict)
    structured_fault: str | None = None
    structured_fault_count: int | None = None

    def __post_init__(self) -> None:
        # Copying means callers never share mutable state with the running server;
        # converting also accepts the JSON lists sent to /_control/config.
        self.api_keys = set(self.api_keys)
        self.models = set(self.models)
        self.deployments = dict(self.deployments)
        self.entity_lexicon = dict(self.entity_lexicon)
        if self.structured_fault is not None and self.structured_fault not in STRUCTURED_FAULTS:
            raise ValueError(f"structured_fault must be one of {', '.join(STRUCTURED_FAULTS)} or None")
        for name in FAULT_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1")
        for name in ("rpm_limit", "distinct_replies", "structured_fault_count"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 or None")


@dataclass
class FakeStats:
    """What the server saw, as a snapshot for assertions and benchmark reports.

    ``completions_served``/``choices_served`` count replies carrying generated text;
    ``structured_served`` the choices answered as JSON, ``structured_faults`` those broken on purpose;
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
    structured_served: int = 0
    structured_faults: int = 0
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
