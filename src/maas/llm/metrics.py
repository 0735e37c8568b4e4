"""Prometheus metrics of language-model serving, in the server's registry beside the tensor ones: time to first
token, inter-token and end-to-end latency, token counters, running and waiting sequences, KV-cache use."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class LlmMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model", "version"]
        self.ttft = Histogram("maas_llm_time_to_first_token_seconds", "Time from arrival to the first token.",
                              labels, buckets=_LATENCY, registry=registry)
        self.itl = Histogram("maas_llm_inter_token_latency_seconds", "Time between two tokens of a sequence.",
                             labels, buckets=_LATENCY, registry=registry)
        self.e2e = Histogram("maas_llm_e2e_request_latency_seconds", "Time from arrival to the last token.",
                             labels, buckets=_LATENCY, registry=registry)
        self.prompt_tokens = Counter("maas_llm_prompt_tokens", "Prompt tokens processed.", labels,
                                     registry=registry)
        self.generation_tokens = Counter("maas_llm_generation_tokens", "Tokens generated.", labels,
                                         registry=registry)
        self.running = Gauge("maas_llm_requests_running", "Sequences in the running batch.", labels,
                             registry=registry)
        self.waiting = Gauge("maas_llm_requests_waiting", "Sequences waiting for a slot.", labels,
                             registry=registry)
        self.kv_cache = Gauge("maas_llm_kv_cache_usage_ratio", "Share of the KV-cache budget reserved.", labels,
                              registry=registry)
        self.embedded = Counter("maas_llm_embedding_inputs", "Texts embedded.", labels, registry=registry)

    def observer(self, model: str, version: str) -> VersionObserver:
        return VersionObserver(self, model, version)


class VersionObserver:
    """The engine's hooks for one model version (label children resolved once)."""

    def __init__(self, m: LlmMetrics, model: str, version: str) -> None:
        self._ttft = m.ttft.labels(model, version)
        self._itl = m.itl.labels(model, version)
        self._e2e = m.e2e.labels(model, version)
        self._prompt = m.prompt_tokens.labels(model, version)
        self._generated = m.generation_tokens.labels(model, version)
        self._running = m.running.labels(model, version)
        self._waiting = m.waiting.labels(model, version)
        self._kv = m.kv_cache.labels(model, version)
        self.embedded = m.embedded.labels(model, version)

    def first_token(self, seconds: float) -> None:
        self._ttft.observe(seconds)

    def next_token(self, seconds: float) -> None:
        self._itl.observe(seconds)

    def finished(self, seconds: float, prompt_tokens: int, completion_tokens: int) -> None:
        self._e2e.observe(seconds)
        self._prompt.inc(prompt_tokens)
        self._generated.inc(completion_tokens)

    def occupancy(self, running: int, waiting: int, kv_used: float) -> None:
        self._running.set(running)
        self._waiting.set(waiting)
        self._kv.set(kv_used)
