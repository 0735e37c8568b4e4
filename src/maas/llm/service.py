"""The language models a server serves: resolves a name as the registry does (`@production`, else the newest
ready version), loads its runtime from the stored safetensors once, and keeps one engine per loaded version.
Transports call only this (and the engines it hands out), as the tensor routes call the data plane."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from maas.errors import InvalidParameter, MaasError, NotFound, ResourceExhausted, Unavailable
from maas.llm import is_language_model
from maas.llm.metrics import LlmMetrics, VersionObserver
from maas.llm.options import LlmSettings
from maas.registry import ModelVersion, Registry
from maas.serving.single_flight import SingleFlight
from maas.types import ModelRef, check_name

if TYPE_CHECKING:  # the engine, the runtimes and the import code load with the first language model
    from maas.llm.engine import ContinuousBatchingEngine

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LoadedLanguageModel:
    version: ModelVersion
    kind: str
    runtime: Any
    observer: VersionObserver
    workdir: tempfile.TemporaryDirectory[str]
    engine: ContinuousBatchingEngine | None = None
    _embed_lock: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    _embed_waiting: int = 0

    @property
    def name(self) -> str:
        return self.version.model

    @property
    def context_length(self) -> int:
        return int(self.runtime.context_length)

    async def embed(self, texts: list[str], max_waiting: int) -> tuple[Any, int]:
        """-> (vectors [n, dim], prompt tokens)."""
        if self._embed_waiting >= max_waiting + 1:
            raise ResourceExhausted(f"model {self.name} is saturated; retry later")
        counts = self.runtime.count_tokens(texts)
        for i, c in enumerate(counts):
            if c > self.context_length:
                raise InvalidParameter(
                    f"input[{i}] has {c} tokens; this model's context is {self.context_length} tokens", "input")
        self._embed_waiting += 1
        try:
            async with self._embed_lock:
                vectors = await asyncio.to_thread(self.runtime.embed, texts)
        finally:
            self._embed_waiting -= 1
        self.observer.embedded.inc(len(texts))
        return vectors, sum(counts)


class LanguageModelService:
    def __init__(self, registry: Registry, metrics_registry: CollectorRegistry,
                 settings: LlmSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or LlmSettings()
        self.metrics = LlmMetrics(metrics_registry)
        self._loaded: dict[tuple[str, int], LoadedLanguageModel] = {}
        self._loading: SingleFlight[tuple[str, int], LoadedLanguageModel] = SingleFlight()
        self._served: set[str] | None = None

    async def start(self, models: list[str] | None = None) -> None:
        """Load the default version of every language model (of `models` when given) before serving."""
        self._served = set(models) if models else None
        for model in await asyncio.to_thread(self.registry.list_models):
            if self._served is not None and model.name not in self._served:
                continue
            try:
                version = await asyncio.to_thread(self.registry.get, model.name)
            except NotFound:
                continue
            if is_language_model(version.config):
                try:
                    await self._ensure(version)
                except MaasError as exc:
                    log.error("cannot load %s: %s", version.ref, exc.message)

    async def stop(self) -> None:
        await self._loading.settle()
        for loaded in list(self._loaded.values()):
            if loaded.engine is not None:
                await loaded.engine.close()
            loaded.workdir.cleanup()
            self.registry.release_paths(loaded.version)  # the decrypted weights, when the home is encrypted
        self._loaded.clear()

    async def resolve(self, model: str) -> LoadedLanguageModel:
        """`name`, `name:3` or `name@alias` -> its loaded language model (loaded on first use)."""
        try:
            ref = ModelRef.parse(model)
            check_name(ref.name)
        except MaasError:
            raise NotFound(f"the model {model[:100]!r} does not exist") from None
        if self._served is not None and ref.name not in self._served:
            raise NotFound(f"the model {model[:100]!r} does not exist")
        version = await asyncio.to_thread(self.registry.get, ref)
        if not is_language_model(version.config):
            raise InvalidParameter(f"{version.ref} is not a language model (serve it through /v2 or :predict)",
                                   "model")
        return await self._ensure(version)

    async def list_models(self) -> list[ModelVersion]:
        """The default version of every language model this server serves."""
        out = []
        for model in await asyncio.to_thread(self.registry.list_models):
            if self._served is not None and model.name not in self._served:
                continue
            try:
                version = await asyncio.to_thread(self.registry.get, model.name)
            except NotFound:
                continue
            if is_language_model(version.config):
                out.append(version)
        return out

    def loaded(self) -> list[LoadedLanguageModel]:
        return list(self._loaded.values())

    async def _ensure(self, version: ModelVersion) -> LoadedLanguageModel:
        key = (version.model, version.version)
        if key in self._loaded:
            return self._loaded[key]
        return await self._loading.run(key, lambda: self._load(version), f"load {version.ref}")

    async def _load(self, version: ModelVersion) -> LoadedLanguageModel:
        kind = str(version.config["kind"])
        workdir = self.registry.temp_dir(f"maas-{version.model}-")
        try:
            runtime = await asyncio.to_thread(self._build_runtime, version, kind, Path(workdir.name))
        except Exception as exc:
            workdir.cleanup()
            self.registry.release_paths(version)
            reason = exc.message if isinstance(exc, MaasError) else f"{type(exc).__name__}: {str(exc)[:300]}"
            log.error("cannot load %s: %s", version.ref, reason)
            raise Unavailable(f"{version.ref} failed to load: {reason}") from None
        observer = self.metrics.observer(version.model, str(version.version))
        loaded = LoadedLanguageModel(version, kind, runtime, observer, workdir)
        if kind == "text-generation":
            from maas.llm.engine import ContinuousBatchingEngine

            loaded.engine = ContinuousBatchingEngine(runtime, self.settings.engine(), observer)
        self._loaded[(version.model, version.version)] = loaded
        log.info("loaded %s (%s, context %d)", version.ref, kind, loaded.context_length)
        return loaded

    def _build_runtime(self, version: ModelVersion, kind: str, workdir: Path) -> Any:
        from maas.llm.genai_runtime import RUNTIME as GENAI
        from maas.llm.importing import materialize

        directory = materialize(self.registry, version, workdir / "model")
        if kind == "embedding":
            from maas.llm.embedding import TransformersEmbeddingRuntime

            return TransformersEmbeddingRuntime.load(directory, version.model)
        if version.config.get("runtime") == GENAI:
            from maas.llm.genai_runtime import GenaiTextRuntime

            return GenaiTextRuntime.load(directory, version.model)
        from maas.llm.torch_runtime import TransformersTextRuntime

        return TransformersTextRuntime.load(directory, version.model)
