"""Which model versions are loaded, following the registry without a restart.

A bare request goes to the version the registry resolves for the name (`@production`, else the newest
ready one); the answer is cached and refreshed whenever `registry.revision()` changes, so alias moves and
new versions take effect within one poll interval. An explicit ready version is loaded on demand. A version
that fails to load is remembered with its reason (reported UNAVAILABLE) while the others keep serving.
Load/unload by name follow Triton's repository extension.

A model's traffic split (maas.traffic, stored beside the aliases) is one more input: a bare request goes to
the arm the split picks. A version takes traffic (as a new default or in a split) only once it is loaded and
has answered its warm-up request, and leaves only once its in-flight requests are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor

from maas.errors import FailedPrecondition, MaasError, NotFound, Unavailable
from maas.llm import is_language_model
from maas.numbers import is_ascii_int
from maas.registry import ModelVersion, Registry
from maas.serving.batcher import Batcher
from maas.serving.contract import ModelIndexEntry
from maas.serving.loaded import LoadedVersion, RuntimeFactory, build_parts, onnxruntime_factory
from maas.serving.metrics import ServingMetrics
from maas.serving.options import ServingOptions
from maas.serving.single_flight import SingleFlight
from maas.serving.slots import SharedSlots
from maas.serving.warmup import stored_sample, warm_up
from maas.traffic.routing import ActiveSplit, ArmChooser
from maas.traffic.store import TrafficStore
from maas.types import ModelRef, check_alias, check_name, parse_version

log = logging.getLogger(__name__)

Key = tuple[str, int]


class ModelRepository:
    def __init__(
        self,
        registry: Registry,
        options: ServingOptions,
        executor: Executor,
        metrics: ServingMetrics,
        runtime_factory: RuntimeFactory = onnxruntime_factory,
    ) -> None:
        self.registry = registry
        self.options = options
        self._executor = executor
        self._metrics = metrics
        self._factory = runtime_factory
        self._versions: dict[Key, LoadedVersion] = {}
        self._failed: dict[Key, str] = {}
        self._loading: SingleFlight[tuple[str, int], LoadedVersion] = SingleFlight()
        self._default: dict[str, int] = {}  # name -> version a bare request is served by
        self._on_demand: set[Key] = set()
        self._served: set[str] | None = None  # None: every model in the registry
        self._unloaded: set[str] = set()
        self._revision: int | None = None
        self._refresh_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._watchers: list[Callable[[], None]] = []
        self.traffic = TrafficStore(registry.sql_store())
        self._splits: dict[str, ActiveSplit] = {}  # name -> the split bare requests follow
        self.slots = SharedSlots()  # a split's versions share the model's execution slots (serving/slots.py)

    # --- lifecycle --------------------------------------------------------------------------------------
    async def start(self, models: list[str] | tuple[str, ...] | None) -> None:
        self._served = {check_name(m) for m in models} if models is not None else None
        await self.refresh(force=True)
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="follow registry")

    async def stop(self, grace_s: float) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self._loading.settle()
        keys = list(self._versions)
        await asyncio.gather(*(self._unload(k, grace_s) for k in keys))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.options.poll_interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception(
                    "following the registry failed; retrying in %.1f s", self.options.poll_interval_s
                )

    # --- following the registry -------------------------------------------------------------------------
    def serves(self, name: str) -> bool:
        """Whether this server follows `name` (every model, unless a list was given or it was unloaded)."""
        return self._allowed(name)

    def _allowed(self, name: str) -> bool:
        if name in self._unloaded:
            return False
        return self._served is None or name in self._served

    async def refresh(self, force: bool = False) -> None:
        """Re-resolve every served model if the registry changed: load new defaults, drop stale versions."""
        async with self._refresh_lock:
            revision = await asyncio.to_thread(self.registry.revision)
            changed = revision != self._revision
            if not changed and not force:
                return
            self._revision = revision
            if self._served is None:
                names = [m.name for m in await asyncio.to_thread(self.registry.list_models)]
            else:
                names = sorted(self._served)
            names = [n for n in names if self._allowed(n)]
            wanted: list[ModelVersion] = []
            for name in names:
                try:
                    found = await asyncio.to_thread(self.registry.get, name)
                    if is_language_model(found.config):  # served by maas.llm's engines, not onnxruntime
                        continue
                    wanted.append(found)
                except NotFound as exc:
                    self._default.pop(name, None)
                    if self._served is not None:
                        log.warning("model %s cannot be served: %s", name, exc.message)
            await asyncio.gather(
                *(self._ensure(v) for v in wanted if (v.model, v.version) not in self._failed),
                return_exceptions=True,
            )
            splits = await self._load_splits(set(names))
            # Defaults and splits move together, once every version they name is loaded and warmed up.
            for version in wanted:
                self._default[version.model] = version.version
            self._splits = splits
            self._share_slots()
            await self._drop_stale(set(names))
        if changed:
            for watcher in self._watchers:
                watcher()

    def watch(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` (on the event loop) after each refresh that found the registry changed."""
        self._watchers.append(on_change)

    async def _load_splits(self, names: set[str]) -> dict[str, ActiveSplit]:
        stored = await asyncio.to_thread(self.traffic.all_splits)
        rollouts = {r.model: r for r in await asyncio.to_thread(self.traffic.active_rollouts)}
        out: dict[str, ActiveSplit] = {}
        for name, split in stored.items():
            if name not in names:
                continue
            try:
                broken = [n for n in sorted(split.versions) if (name, n) in self._failed]
                if broken:  # not retried at every refresh; `load` by name clears the failure
                    raise Unavailable(f"{name}:{broken[0]} failed to load: {self._failed[(name, broken[0])]}")
                versions = [await asyncio.to_thread(self.registry.get, ModelRef(name, version=n))
                            for n in sorted(split.versions)]
                await asyncio.gather(*(self._ensure(v) for v in versions))
            except MaasError as exc:
                log.error("cannot apply the traffic split of %s: %s", name, exc.message)
                if name in self._splits:
                    out[name] = self._splits[name]  # keep routing as before rather than guess
                continue
            old = self._splits.get(name)
            chooser = old.chooser if old is not None and old.split == split else ArmChooser(split)
            out[name] = ActiveSplit(split, chooser, rollouts.get(name))
        return out

    def _share_slots(self) -> None:
        """Pool the slots of each split's versions whose layout maas chose; an explicit layout stays its own."""
        for name in self.slots.models() | set(self._splits):
            active = self._splits.get(name)
            arms: list[Batcher] = []
            shadows: list[Batcher] = []
            if active is not None:
                weighted = {a.version for a in active.split.arms if a.weight > 0}
                for number in sorted(active.split.versions):
                    loaded = self._versions.get((name, number))
                    if loaded is not None and loaded.parts.policy.adaptive:
                        (arms if number in weighted else shadows).append(loaded.batcher)
            self.slots.apply(name, arms, shadows)

    async def _drop_stale(self, names: set[str]) -> None:
        for key in list(self._versions):
            name, number = key
            if name in names and self._default.get(name) == number:
                continue
            if name in self._splits and number in self._splits[name].split.versions:
                continue
            if name in names and key in self._on_demand:
                try:
                    await asyncio.to_thread(self.registry.get, ModelRef(name, version=number))
                    continue
                except NotFound:
                    pass
            log.info("unloading %s:%s (no longer served)", name, number)
            await self._unload(key, self.options.request_timeout_s)

    # --- resolution -------------------------------------------------------------------------------------
    async def route(
        self, name: str, version: str | None, headers: Mapping[str, str] | None = None
    ) -> tuple[LoadedVersion, ActiveSplit | None]:
        """Like `resolve`, but a bare request follows the model's split (when it has one): the loaded arm
        and the split that chose it. A sticky header's value always picks the same arm."""
        if version in (None, ""):
            active = self._splits.get(name)
            if active is not None:
                header = active.split.sticky_header
                key = headers.get(header) if header is not None and headers else None
                loaded = self._versions.get((name, active.chooser.choose(key)))
                if loaded is not None:
                    return loaded, active
        return await self.resolve(name, version), None

    def load_failure(self, name: str, number: int) -> str | None:
        """Why (name, number) could not be loaded here, or None."""
        return self._failed.get((name, number))

    def split_of(self, name: str) -> ActiveSplit | None:
        return self._splits.get(name)

    def get_loaded(self, name: str, number: int) -> LoadedVersion | None:
        return self._versions.get((name, number))

    async def resolve(self, name: str, version: str | None = None) -> LoadedVersion:
        """The loaded version serving (name, version); loads an explicit ready version on demand."""
        check_name(name)
        if version in (None, ""):
            number = self._default.get(name)
            if number is not None and (name, number) in self._versions:
                return self._versions[(name, number)]
            found = await asyncio.to_thread(self.registry.get, name)
        elif is_ascii_int(str(version)):
            key = (name, parse_version(version))
            if key in self._versions:
                return self._versions[key]
            found = await asyncio.to_thread(self.registry.get, ModelRef(name, version=key[1]))
        else:
            found = await asyncio.to_thread(
                self.registry.get, ModelRef(name, alias=check_alias(str(version)))
            )
        key = (found.model, found.version)
        if key in self._versions:
            return self._versions[key]
        if key in self._failed:
            raise Unavailable(f"{found.ref} failed to load: {self._failed[key]}")
        if not self._allowed(name):
            raise Unavailable(f"model {name!r} is not loaded")
        if version not in (None, "") and self._default.get(name) != found.version:
            self._on_demand.add(key)
        return await self._ensure(found)

    def default_version(self, name: str) -> int | None:
        """The version a bare request for `name` goes to, as of the last refresh."""
        return self._default.get(name)

    def loaded(self, name: str) -> list[LoadedVersion]:
        return [v for (n, _), v in sorted(self._versions.items()) if n == name]

    def all_loaded(self) -> list[LoadedVersion]:
        return list(self._versions.values())

    # --- loading ----------------------------------------------------------------------------------------
    async def _ensure(self, version: ModelVersion) -> LoadedVersion:
        key = (version.model, version.version)
        if key in self._versions:
            return self._versions[key]
        return await self._loading.run(key, lambda: self._load(version), f"load {version.ref}")

    async def _load(self, version: ModelVersion) -> LoadedVersion:
        key = (version.model, version.version)
        try:
            parts = await asyncio.to_thread(build_parts, self.registry, version, self.options, self._factory)
        except Exception as exc:
            reason = exc.message if isinstance(exc, MaasError) else f"{type(exc).__name__}: {exc}"
            self._failed[key] = reason
            log.error("cannot load %s: %s", version.ref, reason)
            raise Unavailable(f"{version.ref} failed to load: {reason}") from None
        observer = self._metrics.observer(version.model, str(version.version))
        loaded = LoadedVersion(parts, self._executor, observer)
        try:
            sample = await asyncio.to_thread(stored_sample, self.registry, loaded)
            await warm_up(loaded, sample, self._executor, self.options.request_timeout_s)
        except Exception as exc:
            await loaded.close(0)
            reason = exc.message if isinstance(exc, MaasError) else f"{type(exc).__name__}: {exc}"
            self._failed[key] = reason
            log.error("cannot load %s: %s", version.ref, reason)
            raise Unavailable(f"{version.ref} failed to load: {reason}") from None
        self._versions[key] = loaded
        self._failed.pop(key, None)
        self._metrics.models_loaded.set(len(self._versions))
        log.info(
            "loaded %s (%d instance(s), max_batch_size %d)",
            version.ref,
            parts.policy.instances,
            parts.policy.max_batch_size,
        )
        return loaded

    async def _unload(self, key: Key, grace_s: float) -> None:
        loaded = self._versions.pop(key, None)
        self._on_demand.discard(key)
        if loaded is None:
            return
        self._metrics.models_loaded.set(len(self._versions))
        self.slots.forget(loaded.batcher)
        await loaded.close(grace_s)
        self._metrics.forget(key[0], str(key[1]))

    # --- repository extension ---------------------------------------------------------------------------
    async def load(self, name: str) -> None:
        """Serve `name` (again): resolve its default version and load it, retrying after a failure."""
        version = await asyncio.to_thread(self.registry.get, check_name(name))
        self._unloaded.discard(name)
        if self._served is not None:
            self._served.add(name)
        for key in [k for k in self._failed if k[0] == name]:
            del self._failed[key]
        self._default[name] = version.version
        try:
            await self._ensure(version)
        except Unavailable as exc:
            raise FailedPrecondition(exc.message) from None

    async def unload(self, name: str) -> None:
        """Stop serving `name`: its versions drain and close, and the poller leaves it alone."""
        check_name(name)
        keys = [k for k in self._versions if k[0] == name]
        if not keys and not any(k[0] == name for k in self._failed):
            await asyncio.to_thread(self.registry.get_model, name)  # NotFound for an unknown model
        self._unloaded.add(name)
        if self._served is not None:
            self._served.discard(name)
        self._default.pop(name, None)
        self._splits.pop(name, None)
        self._share_slots()
        for key in [k for k in self._failed if k[0] == name]:
            del self._failed[key]
        await asyncio.gather(*(self._unload(k, self.options.request_timeout_s) for k in keys))

    async def index(self, ready_only: bool = False) -> list[ModelIndexEntry]:
        names = {m.name for m in await asyncio.to_thread(self.registry.list_models)}
        names |= {k[0] for k in self._versions} | {k[0] for k in self._failed}
        entries: list[ModelIndexEntry] = []
        for name in sorted(names):
            keys = sorted({k for k in (*self._versions, *self._failed, *self._loading) if k[0] == name})
            for key in keys:
                if key in self._versions:
                    entries.append(ModelIndexEntry(name, str(key[1]), "READY"))
                elif key in self._loading:
                    entries.append(ModelIndexEntry(name, str(key[1]), "LOADING"))
                else:
                    entries.append(ModelIndexEntry(name, str(key[1]), "UNAVAILABLE", self._failed[key]))
            if not keys:
                reason = "unloaded" if name in self._unloaded else "not loaded"
                entries.append(ModelIndexEntry(name, "", "UNAVAILABLE", reason))
        return [e for e in entries if e.state == "READY"] if ready_only else entries

    async def exists(self, name: str) -> bool:
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self.registry.get_model, name)
            return True
        return False
