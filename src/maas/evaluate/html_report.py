"""Writes an evaluation to a folder: `report.json` for tools and a self-contained `report.html` for people,
with its plots (confusion matrix, ROC curves, residuals) inlined as PNG so the page can be mailed or archived."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.evaluate.report import EvalReport

MAX_ROC_CLASSES = 10


def write_report(report: EvalReport, directory: str | Path) -> dict[str, Path]:
    """Write `report.json` and `report.html` under `directory` (created if needed); return their paths."""
    return write_json_and_html(directory, "report", report.to_dict(), render_html(report))


def write_json_and_html(directory: str | Path, stem: str, data: dict[str, Any], page_html: str) -> dict[str, Path]:
    """`STEM.json` and `STEM.html` under `directory` (created if needed), as every report writes them."""
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
        json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
        json_path.write_text(json.dumps(data, indent=2) + "\n")
        html_path.write_text(page_html)
    except OSError as exc:
        raise InvalidArgument(f"cannot write the report to {out}: {exc}") from None
    return {"json": json_path, "html": html_path}


def render_html(report: EvalReport) -> str:
    figures = [figure_html(t, b64) for t, b64 in _figures(report)]
    scalars = {k: v for k, v in report.metrics.items() if isinstance(v, int | float)}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.4g}</td></tr>" for k, v in scalars.items())
    lat_rows = "".join(
        f"<tr><th>batch {v['batch_size']}</th><td>{v['p50_ms']:.3f} ms</td><td>{v['p99_ms']:.3f} ms</td>"
        f"<td>{v['throughput_per_s']:.0f}/s</td></tr>"
        for v in (report.latency or {}).values()
    )
    latency = (
        "<h2>Latency (in-process)</h2><table><tr><th></th><th>p50</th><th>p99</th><th>throughput</th></tr>"
        f"{lat_rows}</table>" if lat_rows else ""
    )
    e = html.escape
    return page(f"{report.ref} on {report.dataset}", f"""<h1>{e(report.ref)}</h1>
<p class="meta">{e(report.task)} on <b>{e(report.dataset)}</b> (fingerprint {e(report.fingerprint)},
{report.n_samples} samples) · model {report.size.get('bytes', 0):,} bytes,
{report.size.get('gzip_bytes', 0):,} gzipped · {e(report.created_at)}</p>
<h2>Metrics</h2><table>{rows}</table>
{latency}
<h2>Plots</h2>{''.join(figures) or '<p>No plots for this report.</p>'}""")


def page(title: str, body: str) -> str:
    """A self-contained report page (the evaluation and explanation reports share its look)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ padding: 0.25rem 0.75rem; border-bottom: 1px solid #ddd; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }}
figure {{ display: inline-block; margin: 0 1rem 1rem 0; }} img {{ max-width: 28rem; }}
.meta {{ color: #666; }}
</style></head><body>
{body}
</body></html>
"""


def figure_html(title: str, png_b64: str) -> str:
    t = html.escape(title)
    return f'<figure><img alt="{t}" src="data:image/png;base64,{png_b64}"><figcaption>{t}</figcaption></figure>'


def _figures(report: EvalReport) -> list[tuple[str, str]]:
    arrays = report.arrays
    if not arrays:
        return []
    if report.task == "classification":
        out = [("Confusion matrix", _confusion(report))]
        if "proba" in arrays and len(report.class_names) <= MAX_ROC_CLASSES:
            out.append(("ROC curves (one-vs-rest)", _roc(arrays["y_true"], arrays["proba"], report.class_names)))
        return out
    return [("Predicted vs. actual", _scatter(arrays["y_true"], arrays["y_pred"])),
            ("Residuals", _residuals(arrays["y_true"], arrays["y_pred"]))]


def new_figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A pyplot-free figure: no global backend state, nothing to close, the Agg canvas by default."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots()


def png_base64(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _confusion(report: EvalReport) -> str:
    cm = np.asarray(report.metrics["confusion_matrix"])
    names = report.class_names
    fig, ax = new_figure((max(4, 0.5 * len(names) + 2),) * 2)
    ax.imshow(cm, cmap="Blues")
    ax.set(xlabel="predicted", ylabel="true", xticks=range(len(names)), yticks=range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    threshold = cm.max() / 2 if cm.size else 0
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    return png_base64(fig)


def _roc(y_true: np.ndarray, proba: np.ndarray, names: list[str]) -> str:
    from sklearn.metrics import auc, roc_curve

    fig, ax = new_figure((5, 5))
    classes = [1] if proba.shape[1] == 2 else range(proba.shape[1])
    for j in classes:
        positives = y_true == j
        if positives.all() or not positives.any():
            continue  # one-vs-rest is undefined for this class on this data
        fpr, tpr, _ = roc_curve(positives, proba[:, j])
        ax.plot(fpr, tpr, label=f"{names[j]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(fontsize="small", loc="lower right")
    return png_base64(fig)


def _scatter(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    fig, ax = new_figure((5, 5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.6)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey")
    ax.set(xlabel="actual", ylabel="predicted")
    return png_base64(fig)


def _residuals(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    fig, ax = new_figure((5, 4))
    ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.6)
    ax.axhline(0, linestyle="--", color="grey")
    ax.set(xlabel="predicted", ylabel="actual - predicted")
    return png_base64(fig)
