"""A version's reports as the pages show them: the evaluation report (`eval:<data>`, from maas.evaluate), the
training record (`test`, `cv`, `search`, from maas.training) and the optimization report (`optimize`, from
maas.optimize and maas.llm.optimize) turned into tables and chart series. Every field a report has that is
not laid out here is still listed under "other fields", so a newer report never loses data on the page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeGuard

# Evaluation metrics in the order people read them; others follow by name.
EVAL_ORDER = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_weighted", "recall_weighted",
              "f1_weighted", "roc_auc_ovr", "log_loss", "mae", "rmse", "r2")
EVAL_LAID_OUT = {"ref", "dataset", "fingerprint", "task", "n_samples", "metrics", "size", "latency", "lineage",
                 "class_names", "created_at"}
LOWER_IS_BETTER = {"log_loss", "mae", "rmse", "mse"}
# parent/child figure -> (comparison key, how that key reads)
OPT_COMPARED = {"size_bytes": "size_ratio", "gzip_bytes": "gzip_ratio", "latency_p50_ms_b1": "speedup_b1",
                "throughput_b32": "speedup_b32", "accuracy": "accuracy_drop", "perplexity": "perplexity_ratio"}
OPT_LAID_OUT = {"transform", "params", "parent_version", "data", "parent", "child", "comparison", "details",
                "gate"}
TRAIN_KEYS = ("test", "cv", "search", "params", "data", "seed", "train_config")
_TOKENS_PER_S = re.compile(r"tokens_per_s_c(\d+)")


def is_number(x: Any) -> TypeGuard[int | float]:
    return isinstance(x, int | float) and not isinstance(x, bool)


def shown(x: Any) -> str:
    """A value as a cell: numbers to 6 significant digits, structures as compact JSON."""
    if is_number(x):
        return f"{x:.6g}" if isinstance(x, float) else str(x)
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return json.dumps(x, sort_keys=True, default=str)


def others(report: dict[str, Any], laid_out: set[str]) -> list[tuple[str, str]]:
    return [(k, shown(v)) for k, v in sorted(report.items()) if k not in laid_out]


@dataclass
class Chart:
    """What console.js draws with Chart.js: a bar chart of `series` (label -> values) over `labels`."""

    title: str
    labels: list[str]
    series: dict[str, list[float | None]]
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "labels": self.labels, "series": self.series, "unit": self.unit}


@dataclass
class Evaluation:
    key: str
    dataset: str
    fingerprint: str
    task: str
    samples: Any
    created_at: str
    metrics: list[tuple[str, Any]]  # scalar metrics, in reading order
    per_class: list[dict[str, Any]]  # class, precision, recall, f1, support (from the confusion matrix)
    confusion: list[list[tuple[int, float]]] | None  # rows of (count, share of the row) for the heat map
    classes: list[str]
    size: list[tuple[str, Any]]
    latency: list[dict[str, Any]]  # one row per measured batch size
    other: list[tuple[str, str]]
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Training:
    test: list[tuple[str, Any]]
    cv: dict[str, Any] | None
    search: list[tuple[str, str]]
    params: list[tuple[str, str]]
    data: list[tuple[str, str]]
    seed: Any
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Optimization:
    transform: str
    params: list[tuple[str, str]]
    parent_version: Any
    data: Any
    rows: list[dict[str, Any]]  # figure, parent, child, delta, comparison name, comparison value, better
    comparison_only: list[tuple[str, Any]]  # comparison keys no parent/child figure explains
    verdict: str
    passed: bool | None
    details: list[tuple[str, str]]
    other: list[tuple[str, str]]
    charts: list[Chart] = field(default_factory=list)


def evaluation(key: str, report: dict[str, Any]) -> Evaluation:
    raw = report.get("metrics")
    metrics = raw if isinstance(raw, dict) else {}
    names = [str(c) for c in report.get("class_names") or []] if isinstance(report.get("class_names"), list) else []
    scalars = [(k, metrics[k]) for k in EVAL_ORDER if is_number(metrics.get(k))]
    scalars += [(k, v) for k, v in sorted(metrics.items()) if k not in EVAL_ORDER and is_number(v)]
    extra = [(f"metrics.{k}", shown(v)) for k, v in sorted(metrics.items())
             if not is_number(v) and k != "confusion_matrix"]
    matrix = _matrix(metrics.get("confusion_matrix"))
    if matrix is not None and len(names) != len(matrix):
        names = [str(i) for i in range(len(matrix))]
    size = _dict(report, "size")
    latency = _dict(report, "latency")
    lat_rows = [{"name": k, **v} for k, v in sorted(latency.items(), key=lambda kv: _batch_of(kv))
                if isinstance(v, dict)]
    out = Evaluation(
        key=key, dataset=str(report.get("dataset", key.removeprefix("eval:"))),
        fingerprint=str(report.get("fingerprint", key.removeprefix("eval:"))), task=str(report.get("task", "")),
        samples=report.get("n_samples"), created_at=str(report.get("created_at", "")), metrics=scalars,
        per_class=_per_class(matrix, names) if matrix is not None else [],
        confusion=_heat(matrix) if matrix is not None else None, classes=names,
        size=[(k, v) for k, v in sorted(size.items())], latency=lat_rows,
        other=others(report, EVAL_LAID_OUT) + extra + [(f"latency.{k}", shown(v)) for k, v in latency.items()
                                                       if not isinstance(v, dict)],
    )
    if out.per_class:
        out.charts.append(Chart("Per-class F1 and recall", [r["class"] for r in out.per_class],
                                {"F1": [r["f1"] for r in out.per_class],
                                 "recall": [r["recall"] for r in out.per_class]}))
    if len(lat_rows) > 0 and any(is_number(r.get("p50_ms")) for r in lat_rows):
        out.charts.append(Chart("Latency by batch size (ms)", [f"batch {r.get('batch_size', r['name'])}"
                                                                for r in lat_rows],
                                {"p50": [_num(r.get("p50_ms")) for r in lat_rows],
                                 "p99": [_num(r.get("p99_ms")) for r in lat_rows]}, "ms"))
    return out


def training(metrics: dict[str, Any]) -> Training | None:
    """The training record of a version made by `maas train` (None for other versions)."""
    test = metrics.get("test")
    if not isinstance(test, dict) or "train_config" not in metrics:
        return None
    cv = metrics.get("cv") if isinstance(metrics.get("cv"), dict) else None
    out_cv = None
    charts: list[Chart] = []
    if cv is not None:
        folds = [f for f in cv.get("folds") or [] if is_number(f)] if isinstance(cv.get("folds"), list) else []
        out_cv = {"metric": cv.get("metric"), "k": cv.get("k"), "mean": cv.get("mean"), "std": cv.get("std"),
                  "folds": folds, "other": others(cv, {"metric", "k", "mean", "std", "folds"})}
        if folds:
            charts.append(Chart(f"{cv.get('metric', 'score')} per fold", [f"fold {i + 1}" for i in range(len(folds))],
                                {str(cv.get("metric", "score")): [float(f) for f in folds]}))
    search = _dict(metrics, "search")
    data = _dict(metrics, "data")
    params = _dict(metrics, "params")
    return Training(
        test=[(k, v) for k, v in sorted(test.items())], cv=out_cv,
        search=[(k, shown(v)) for k, v in sorted(search.items())],
        params=[(k, shown(v)) for k, v in sorted(params.items())],
        data=[(k, shown(v)) for k, v in sorted(data.items())], seed=metrics.get("seed"), charts=charts,
    )


def optimization(report: dict[str, Any]) -> Optimization:
    parent = _dict(report, "parent")
    child = _dict(report, "child")
    comparison = _dict(report, "comparison")
    used: set[str] = set()
    rows = []
    for name in list(parent) + [k for k in child if k not in parent]:
        a, b = parent.get(name), child.get(name)
        key = OPT_COMPARED.get(name)
        if key is None and (m := _TOKENS_PER_S.fullmatch(name)):
            key = f"speedup_c{m.group(1)}"
        ratio = comparison.get(key) if key else None
        if key and key in comparison:
            used.add(key)
        delta = b - a if is_number(a) and is_number(b) else None
        rows.append({"figure": name, "parent": a, "child": b, "delta": delta,
                     "compared": key if key in comparison else None, "ratio": ratio, "better": _better(name, delta)})
    gate = _dict(report, "gate")
    verdict, passed = _verdict(gate, comparison)
    used |= {"accuracy_drop"} if "accuracy_drop" in comparison else set()
    params = _dict(report, "params")
    details = _dict(report, "details")
    out = Optimization(
        transform=str(report.get("transform", "")), params=[(k, shown(v)) for k, v in sorted(params.items())],
        parent_version=report.get("parent_version"), data=report.get("data"), rows=rows,
        comparison_only=[(k, v) for k, v in sorted(comparison.items()) if k not in used], verdict=verdict,
        passed=passed, details=[(k, shown(v)) for k, v in sorted(details.items())],
        other=others(report, OPT_LAID_OUT) + [(f"gate.{k}", shown(v)) for k, v in sorted(gate.items())
                                              if k not in ("max_accuracy_drop", "passed", "accuracy_drop")],
    )
    ratios = [(k, float(v)) for k, v in comparison.items() if is_number(v) and (k.endswith("_ratio")
                                                                                or k.startswith("speedup"))]
    if ratios:
        out.charts.append(Chart("Child relative to parent (parent = 1)", [k for k, _ in ratios],
                                {"child / parent": [v for _, v in ratios]}))
    return out


def version_reports(metrics: dict[str, Any]) -> dict[str, Any]:
    """Every report of a version: evaluations (newest last), the training record, the optimization report."""
    evals = [evaluation(k, v) for k, v in metrics.items() if k.startswith("eval:") and isinstance(v, dict)]
    opt = metrics.get("optimize")
    return {"evaluations": evals, "training": training(metrics),
            "optimization": optimization(opt) if isinstance(opt, dict) else None}


def shared_evaluations(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """For each data set both versions were evaluated on: metric, A, B, B - A (the compare view's table)."""
    out = []
    for key in [k for k in a if k.startswith("eval:") and isinstance(a[k], dict) and isinstance(b.get(k), dict)]:
        ea, eb = evaluation(key, a[key]), evaluation(key, b[key])
        ma, mb = dict(ea.metrics), dict(eb.metrics)
        rows = [(m, ma.get(m), mb.get(m), mb[m] - ma[m] if m in ma and m in mb else None, _better(m, (
            mb[m] - ma[m]) if m in ma and m in mb else None)) for m in [*ma, *[k for k in mb if k not in ma]]]
        la, lb = _p50(ea), _p50(eb)
        if la is not None or lb is not None:
            rows.append(("latency p50 ms (batch 1)", la, lb, lb - la if la is not None and lb is not None else None,
                         _better("latency", lb - la if la is not None and lb is not None else None)))
        out.append({"dataset": ea.dataset, "fingerprint": ea.fingerprint, "rows": rows})
    return out


def _p50(e: Evaluation) -> float | None:
    for r in e.latency:
        if r.get("batch_size") == 1 and is_number(r.get("p50_ms")):
            return float(r["p50_ms"])
    return None


def _better(name: str, delta: float | None) -> str:
    """'up' when the change is an improvement, 'down' when it is worse, '' when unchanged or unknown."""
    if delta is None or delta == 0:
        return ""
    lower = name in LOWER_IS_BETTER or "latency" in name or "ttft" in name or name.endswith("bytes") \
        or name in ("perplexity", "size", "size_ratio", "gzip_ratio", "accuracy_drop")
    return "up" if (delta < 0) == lower else "down"


def _verdict(gate: dict[str, Any], comparison: dict[str, Any]) -> tuple[str, bool | None]:
    """The accuracy gate's outcome, as far as the report records it (a child that failed it is never
    published, so a published child passed whatever gate was set)."""
    allowed = gate.get("max_accuracy_drop")
    drop = comparison.get("accuracy_drop")
    if is_number(allowed) and is_number(drop):
        return f"passed: accuracy drop {drop:.4g} within the allowed {allowed:.4g}", True
    if is_number(drop):
        return f"no accuracy gate was set; accuracy drop {drop:.4g}", None
    return "no accuracy gate: no labelled data was measured", None


def _matrix(value: Any) -> list[list[int]] | None:
    if not isinstance(value, list) or not value or len(value) > 100:
        return None
    n = len(value)
    if not all(isinstance(r, list) and len(r) == n and all(is_number(c) for c in r) for r in value):
        return None
    return [[int(c) for c in r] for r in value]


def _heat(matrix: list[list[int]]) -> list[list[tuple[int, float]]]:
    return [[(c, c / sum(r) if sum(r) else 0.0) for c in r] for r in matrix]


def _per_class(matrix: list[list[int]], names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, name in enumerate(names):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted = sum(r[i] for r in matrix)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return rows


def _batch_of(item: tuple[str, Any]) -> int:
    value = item[1].get("batch_size") if isinstance(item[1], dict) else None
    return int(value) if isinstance(value, int | float) else 0


def _dict(report: dict[str, Any], key: str) -> dict[str, Any]:
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _num(x: Any) -> float | None:
    return float(x) if is_number(x) else None
