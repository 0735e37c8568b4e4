"""Writes a data set's explanations to a folder: `explanation.json` for tools and `explanation.html` for people
(the evaluation report's page and plotting helpers): bar and beeswarm plots for tabular models, a grid of
inputs with their heat maps and per-class mean maps for image models."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from maas.evaluate.html_report import figure_html, new_figure, page, png_base64, write_json_and_html
from maas.explain.dataset import DatasetExplanation
from maas.explain.heatmap import overlay_png

TOP_FEATURES = 20
GRID = 24  # inputs shown with their heat maps


def write_report(result: DatasetExplanation, directory: str | Path) -> dict[str, Path]:
    return write_json_and_html(directory, "explanation", result.to_dict(), render_html(result))


def render_html(result: DatasetExplanation) -> str:
    e = html.escape
    doc = result.to_dict()
    rows = "".join(
        f"<tr><th>{e(f['feature'])}</th><td>{f['importance']:.4g}</td></tr>" for f in doc["importance"][:TOP_FEATURES]
    )
    classes = "".join(
        f"<tr><th>{e(label)}</th><td>{c['rows']}</td><td>"
        f"{e(', '.join(f['feature'] for f in c['top_features'][:5]))}</td></tr>"
        for label, c in doc["per_class"].items()
    )
    plots = _image_plots(result) if result.image else _tabular_plots(result)
    params = e(", ".join(f"{k}={v}" for k, v in result.parameters.items()))
    body = f"""<h1>Why {e(result.ref)} answers what it does</h1>
<p class="meta">{e(result.method)} on <b>{e(result.dataset)}</b> rows {result.rows[0]}-{result.rows[1]} ({params})</p>
<h2>Global importance (mean |attribution|)</h2><table>{rows}</table>
<h2>Per class (the class explained: each row's prediction unless a target was given)</h2>
<table><tr><th>class</th><th>rows</th><th>most important</th></tr>{classes}</table>
<h2>Plots</h2>{''.join(plots)}"""
    return page(f"Explanations of {result.ref} on {result.dataset}", body)


def _tabular_plots(result: DatasetExplanation) -> list[str]:
    importance = result.importance()
    order = np.argsort(-importance)[:TOP_FEATURES][::-1]
    names = [_feature_label(result.feature_names[i]) for i in order]
    fig, ax = new_figure((6, max(2.5, 0.3 * len(order) + 1)))
    ax.barh(range(len(order)), importance[order], color="#1f77b4")
    ax.set(yticks=range(len(order)), xlabel="mean |attribution|")
    ax.set_yticklabels(names)
    bar = png_base64(fig)

    values = result.attributions.reshape(len(result.attributions), -1)
    features = result.inputs.reshape(len(result.inputs), -1)
    fig, ax = new_figure((6, max(2.5, 0.3 * len(order) + 1)))
    jitter = np.random.default_rng(0)
    for row, i in enumerate(order):
        f = features[:, i]
        span = float(f.max() - f.min())
        colour = (f - f.min()) / span if span > 0 else np.full_like(f, 0.5)
        points = ax.scatter(values[:, i], row + jitter.uniform(-0.3, 0.3, len(f)), c=colour, cmap="coolwarm",
                            s=10, vmin=0, vmax=1)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(yticks=range(len(order)), xlabel="attribution (colour: feature value, low to high)")
    ax.set_yticklabels(names)
    fig.colorbar(points, ax=ax, label="feature value")
    return [figure_html("Global importance", bar), figure_html("Attributions per row (beeswarm)", png_base64(fig))]


def _image_plots(result: DatasetExplanation) -> list[str]:
    cells = []
    for i in range(min(GRID, len(result.inputs))):
        png = base64.b64encode(overlay_png(_picture(result.inputs[i]), _picture(result.attributions[i]))).decode()
        caption = f"row {result.rows[0] + i}: {result.label(int(result.targets[i]))} ({result.predictions[i]:.3g})"
        cells.append(
            f'<figure><img style="width:7rem" alt="{html.escape(caption)}" src="data:image/png;base64,{png}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    means = []
    for t in sorted(set(int(t) for t in result.targets)):
        chosen = result.targets == t
        mean = np.abs(result.attributions[chosen]).mean(axis=0)
        png = base64.b64encode(overlay_png(_picture(result.inputs[chosen].mean(axis=0)), _picture(mean))).decode()
        means.append(figure_html(f"class {result.label(t)} ({int(chosen.sum())} rows): mean heat map", png)
                     .replace("<img ", '<img style="width:7rem" '))
    return ["<h3>Inputs and heat maps</h3>", *cells, "<h3>Per class</h3>", *means]


def _picture(array: np.ndarray) -> np.ndarray:
    """HxWxC for pictures given CxHxW (a tensor-fed image model)."""
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        return array.transpose(1, 2, 0)
    return array[..., np.newaxis] if array.ndim == 2 else array


def _feature_label(name: str) -> str:
    return f"feature {name}" if name.isdigit() else name
