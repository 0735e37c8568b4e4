"""Hyper-parameter search with Optuna: a seeded TPE sampler, and a median pruner that stops a trial whose
intermediate scores (per fold, or per epoch on the validation split) trail the trials before it."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maas.training.config import Search

log = logging.getLogger(__name__)

# Reports an intermediate score at a step; raises the pruner's exception when the trial should stop.
Report = Callable[[int, float], None]
Objective = Callable[[dict[str, Any], Report], float]
TrialCallback = Callable[[dict[str, Any]], None]


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    direction: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # number, params, score, state

    def to_dict(self) -> dict[str, Any]:
        return {"best_params": self.best_params, "best_score": self.best_score, "direction": self.direction,
                "trials": self.trials}


def _suggest(trial: Any, space: Search) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, dim in space.space.items():
        if dim.type == "int":
            params[name] = trial.suggest_int(name, int(dim.low), int(dim.high))  # type: ignore[arg-type]
        elif dim.type == "float":
            params[name] = trial.suggest_float(name, float(dim.low), float(dim.high))  # type: ignore[arg-type]
        elif dim.type == "loguniform":
            params[name] = trial.suggest_float(name, float(dim.low), float(dim.high), log=True)  # type: ignore[arg-type]
        else:
            params[name] = trial.suggest_categorical(name, dim.choices)
    return params


def run(
    spec: Search, objective: Objective, *, direction: str, seed: int, on_trial: TrialCallback | None = None
) -> SearchResult:
    """Run `spec.trials` trials (or until `spec.timeout_s`); the best finished trial wins."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if spec.pruner == "median" \
        else optuna.pruners.NopPruner()
    study = optuna.create_study(
        direction=direction, sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner,  # type: ignore[arg-type]
    )
    records: list[dict[str, Any]] = []

    def _objective(trial: Any) -> float:
        params = _suggest(trial, spec)

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        state, score = "complete", math.nan
        try:
            score = float(objective(params, report))
            return score
        except optuna.TrialPruned:
            state = "pruned"
            raise
        finally:
            rec = {"number": trial.number, "params": params, "score": score, "state": state}
            records.append(rec)
            log.info("trial %d %s: %s -> %s", trial.number, state, params, score)
            if on_trial is not None:
                on_trial(rec)

    study.optimize(_objective, n_trials=spec.trials, timeout=spec.timeout_s, catch=())
    done = [r for r in records if r["state"] == "complete" and not math.isnan(r["score"])]
    if not done:
        from maas.errors import FailedPrecondition

        raise FailedPrecondition("search: no trial finished; raise search.trials or search.timeout_s")
    best = (max if direction == "maximize" else min)(done, key=lambda r: r["score"])
    return SearchResult(dict(best["params"]), float(best["score"]), direction, records)
