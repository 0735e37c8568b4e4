"""The drift report as one self-contained HTML page: per feature, the reference and current distributions
side by side (inline SVG histograms on shared bins) with the test, its value and its verdict."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from maas.monitor.drift import ColumnDrift
from maas.monitor.report import DriftReport

_W, _H, _BINS = 360, 120, 20


def _histogram_svg(reference: list[float], current: list[float]) -> str:
    ref, cur = np.asarray(reference), np.asarray(current)
    both = np.concatenate([ref, cur])
    both = both[np.isfinite(both)]
    if both.size == 0:
        return "<p>no finite values</p>"
    edges = np.histogram_bin_edges(both, bins=_BINS)
    shares = []
    for values in (ref, cur):
        counts = np.histogram(values[np.isfinite(values)], edges)[0].astype(float)
        shares.append(counts / max(counts.sum(), 1.0))
    top = max(float(s.max()) for s in shares) or 1.0
    bar = _W / _BINS / 2
    rects = []
    for series, (colour, offset) in zip(shares, (("#4c78a8", 0.0), ("#f58518", bar)), strict=True):
        for i, s in enumerate(series):
            h = s / top * (_H - 10)
            rects.append(
                f'<rect x="{i * 2 * bar + offset:.1f}" y="{_H - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"/>'
            )
    return f'<svg width="{_W}" height="{_H}" role="img">{"".join(rects)}</svg>'


def _row(drift: ColumnDrift, samples: tuple[list[float], list[float]]) -> str:
    verdict = "drift" if drift.drifted else "no drift"
    cmp = "<" if drift.method in ("ks", "chisquare", "z") else "≥"
    return (
        f"<tr class='{'drift' if drift.drifted else 'ok'}'><td>{html.escape(drift.column)}</td>"
        f"<td>{drift.kind}</td><td>{drift.method}</td>"
        f"<td>{drift.statistic:.4g} (drift if {cmp} {drift.threshold:g})</td><td>{verdict}</td>"
        f"<td>{_histogram_svg(*samples)}</td></tr>"
    )


def render(report: DriftReport) -> str:
    doc = report.to_dict()
    rows = [_row(f, report.samples[f.column]) for f in report.features]
    if report.prediction is not None:
        rows.append(_row(report.prediction, report.samples[report.prediction.column]))
    out = doc["outliers"]
    title = f"Drift of {report.model}:{report.version}"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 8px;border-bottom:1px solid #ddd}}
tr.drift td{{background:#fde2e1}}.legend span{{display:inline-block;width:1em;height:1em}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Window {html.escape(report.since)} – {html.escape(report.until)}: {report.current_rows} logged rows against
{report.reference_rows} reference rows ({html.escape(report.reference_source or 'reference')}).</p>
<p><b>Data set drift: {"yes" if report.dataset_drift else "no"}</b> — {len(report.drifted_features)} of
{len(report.features)} features drifted (share {report.share_drifted:.2f}, threshold {report.drift_share:g});
prediction drift: {"yes" if doc["prediction_drift"] else "no"}.</p>
<p>Outliers (Mahalanobis distance to the reference, line at its 99th percentile {out["threshold"]:.3g}):
{out["outliers"]} of {out["requests"]} requests, mean score {out["mean_score"]:.3g}, max {out["max_score"]:.3g}.</p>
<p class="legend"><span style="background:#4c78a8"></span> reference
<span style="background:#f58518"></span> current</p>
<table><tr><th>feature</th><th>kind</th><th>test</th><th>value</th><th>result</th><th>distributions</th></tr>
{"".join(rows)}</table></body></html>
"""


def write_report(report: DriftReport, folder: Path) -> tuple[Path, Path]:
    """`drift.json` and `drift.html` in `folder` (created)."""
    from maas.evaluate.html_report import write_json_and_html

    paths = write_json_and_html(folder, "drift", report.to_dict(), render(report))
    return paths["json"], paths["html"]
