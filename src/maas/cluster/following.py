"""The driver's side of `maas serve --ray`: one Ray Serve application per served tensor model (`model-NAME`),
kept in step with the registry while it runs. A model registered (or given its first ready version) after the
start gets its deployment, sized by the same `resolve()` as at the start; a deleted model, or one with no
ready version left (all archived), loses it; a new default version whose `config["scaling"]` differs is
redeployed with the new size (Ray Serve scales or replaces the replicas in place, serving throughout).

Why one application per model rather than one application holding them all: Ray Serve deploys an application
as a whole, and the ingress's constructor arguments would have to name the new deployment, so adding one
would replace the ingress replica (its ports closed and reopened, its requests cut). Separate applications are
added and deleted without touching the ingress or any other model's replicas; the ingress finds them by name
(`cluster/discovery.py`). The driver notices changes by `registry.revision()`, one cheap read per poll
interval, as the replicas do; it lists the models only when the revision moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from maas.cluster.scaling import ReplicaScaling, resolve
from maas.errors import MaasError, NotFound
from maas.registry import Registry

log = logging.getLogger("maas")

APP_PREFIX = "model-"  # the application and its one deployment are both named model-NAME


def app_name(model: str) -> str:
    return APP_PREFIX + model


def model_of(app: str) -> str | None:
    return app[len(APP_PREFIX):] if app.startswith(APP_PREFIX) else None


def wanted(registry: Registry, models: list[str] | None,
           scaling_overrides: Mapping[str, Mapping[str, int | float]],
           on_error: Callable[[str, MaasError], None] | None = None) -> dict[str, ReplicaScaling]:
    """The tensor models that should have a deployment now (the named ones, else every model with a ready
    version; language models are served by the ingress's OpenAI routes) and their scaling. A bad
    `config.scaling` raises, or with `on_error` is handed to it and the model left out."""
    from maas.llm import is_language_model

    out: dict[str, ReplicaScaling] = {}
    for name in models if models else [m.name for m in registry.list_models()]:
        try:
            version = registry.get(name)
        except NotFound:
            continue
        if is_language_model(version.config):
            continue
        try:
            out[name] = resolve(version.config, name, scaling_overrides.get(name))
        except MaasError as exc:
            if on_error is None:
                raise
            on_error(name, exc)
    return out


def changes(deployed: Mapping[str, ReplicaScaling], want: Mapping[str, ReplicaScaling],
            ) -> tuple[dict[str, ReplicaScaling], list[str]]:
    """What to deploy (new models, and those whose deployment options changed: `max_calls` alone is the
    ingress's business) and which applications to delete."""
    def options(s: ReplicaScaling | None) -> dict[str, Any] | None:
        return None if s is None else s.deployment_options()

    deploy = {name: s for name, s in want.items() if options(deployed.get(name)) != options(s)}
    return deploy, sorted(set(deployed) - set(want))


class DeploymentFollower:
    """`deploy(scalings, wait)` and `delete(names)` do the Ray Serve calls (handed in by `cluster/run.py`)."""

    def __init__(self, registry: Registry, models: list[str] | None,
                 scaling_overrides: Mapping[str, Mapping[str, int | float]],
                 deploy: Callable[[Mapping[str, ReplicaScaling], bool], Any],
                 delete: Callable[[list[str]], Any]) -> None:
        self.registry, self.models, self.scaling_overrides = registry, models, scaling_overrides
        self._deploy, self._delete = deploy, delete
        self.deployed: dict[str, ReplicaScaling] = {}
        self.revision: int | None = None

    def start(self, plan: Mapping[str, ReplicaScaling], stale: list[str]) -> None:
        """Deploy `plan` (without waiting: the ingress starts meanwhile) and delete the `stale` applications
        (models no longer served, left by an earlier run on this cluster)."""
        self.revision = self.registry.revision()  # before the plan's reads: a change during them is seen next
        if stale:
            log.info("deleting deployments no longer served: %s", ", ".join(stale))
            self._delete(stale)
        if plan:
            self._deploy(plan, False)
        self.deployed = dict(plan)

    def sync(self) -> bool:
        """One poll: if the registry changed, deploy and delete what it asks for (without waiting: the ingress
        serves a new model itself until its deployment runs). Returns whether anything was asked of Ray."""
        revision = self.registry.revision()
        if revision == self.revision:
            return False
        refused: list[str] = []

        def bad(name: str, exc: MaasError) -> None:  # logged once per registry change, not per poll
            log.error("%s: cannot deploy it: %s", name, exc.message)
            refused.append(name)

        want = wanted(self.registry, self.models, self.scaling_overrides, on_error=bad)
        want.update({n: self.deployed[n] for n in refused if n in self.deployed})  # keeps its current size
        deploy, delete = changes(self.deployed, want)
        for name in delete:
            log.info("%s: no longer served; deleting its deployment", name)
        if delete:
            self._delete(delete)
            for name in delete:
                del self.deployed[name]
        for name, scaling in deploy.items():
            what = "redeploying it with its new scaling" if name in self.deployed else "deploying it"
            log.info("%s: %s (%s)", name, what, _describe(scaling))
        if deploy:
            self._deploy(deploy, False)
            self.deployed.update(deploy)
        self.revision = revision  # only now: a failed Ray call is tried again at the next poll
        return bool(deploy or delete)


def _describe(scaling: ReplicaScaling) -> str:
    options = scaling.deployment_options()
    auto = options.get("autoscaling_config")
    size = (f"{auto['min_replicas']}-{auto['max_replicas']} replicas" if auto
            else f"{options['num_replicas']} replica(s)")
    return f"{size}, {options['ray_actor_options']['num_cpus']} CPU each"
