"""Plotly figure builders for comparing unlearning methods, instance-wise unlearning and SAPS.

Same rules as :mod:`ssd_core.figures`: every ``*_figure`` function is pure (plain numbers and
arrays in, one :class:`plotly.graph_objects.Figure` out) and uses the shared look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import FORGET, GROUP_COLOURS, RETAIN, SUMMARY_LABELS, TEST, _image_rgb, _pct, _style, _titled, short_layer_name

# One colour per method, stable across figures (retrain, the gold standard, is always dark).
METHOD_COLOURS = {
    "retrain": "#111827",
    "ssd": "#e4572e",
    "lfssd": "#f4a261",
    "finetune": "#2e86ab",
    "neggrad_plus": "#6a4c93",
    "random_labels": "#2a9d8f",
    "bad_teacher": "#e9c46a",
    "scrub": "#d1495b",
    "salun": "#7a8ca8",
    "l2ul": "#264653",
    "saps": "#9c6644",
    "original": "#9aa5b1",
}
_FALLBACK = ["#577590", "#43aa8b", "#f94144", "#f3722c", "#90be6d", "#277da1"]
RULE_COLOURS = {"sharpness": "#e4572e", "fisher": "#2e86ab", "magnitude": "#6a4c93", "random": "#9aa5b1"}

COMPARE_LABELS = {**SUMMARY_LABELS, "zrf": "ZRF"}


def method_colour(name: str, position: int = 0) -> str:
    return METHOD_COLOURS.get(name, _FALLBACK[position % len(_FALLBACK)])


def method_metrics_figure(
    summaries: Mapping[str, Mapping[str, float | None]], keys: Sequence[str] | None = None, note: str | None = None
) -> go.Figure:
    """Grouped bars: one group per metric (in %), one bar per method (in the mapping's order)."""
    keys = list(keys or COMPARE_LABELS)
    labels = [COMPARE_LABELS.get(k, k) for k in keys]
    fig = go.Figure()
    for i, (method, values) in enumerate(summaries.items()):
        fig.add_bar(name=method, x=labels, y=[_pct(values.get(k)) for k in keys], marker_color=method_colour(method, i),
                    hovertemplate="%{x}: %{y:.1f}%<extra>" + method + "</extra>")
    fig.update_yaxes(title="%", range=[0, 109])
    return _style(fig, _titled("Metrics per method", note), barmode="group", bargap=0.2)


def gap_figure(gaps: Mapping[str, Mapping[str, float | None]], keys: Sequence[str] | None = None) -> go.Figure:
    """Grouped bars of |metric - retrain's metric| (percentage points) per method; lower is better."""
    keys = list(keys or COMPARE_LABELS)
    labels = [COMPARE_LABELS.get(k, k) for k in keys]
    fig = go.Figure()
    for i, (method, values) in enumerate(gaps.items()):
        fig.add_bar(name=method, x=labels, y=[_pct(values.get(k)) for k in keys], marker_color=method_colour(method, i),
                    hovertemplate="%{x}: %{y:.1f} points<extra>" + method + "</extra>")
    fig.update_yaxes(title="gap to retrain (points)", rangemode="tozero")
    return _style(fig, "Gap to retrain (lower is better)", barmode="group", bargap=0.2)


def per_class_methods_figure(
    classes: Sequence[str], per_class: Mapping[str, Sequence[float | None]], forget_classes: Sequence[int] = ()
) -> go.Figure:
    """Per-class test accuracy (%) of each method side by side; forgotten classes' labels in red."""
    labels = [f"<span style='color:{FORGET}'><b>{c}</b></span>" if i in set(forget_classes) else str(c)
              for i, c in enumerate(classes)]
    fig = go.Figure()
    for i, (method, values) in enumerate(per_class.items()):
        fig.add_bar(name=method, x=labels, y=[_pct(v) for v in values], marker_color=method_colour(method, i),
                    hovertemplate="class %{x}: %{y:.1f}%<extra>" + method + "</extra>")
    fig.update_yaxes(title="test accuracy (%)", range=[0, 109])
    fig.update_xaxes(title="class (forgotten in red)", type="category")
    return _style(fig, "Per-class test accuracy per method", barmode="group", bargap=0.2)


def signal_histograms_figure(
    per_method: Mapping[str, Mapping[str, np.ndarray]], quantity: str = "loss",
    mia: Mapping[str, float | None] | None = None, floor: float = 1e-6, max_cols: int = 4,
) -> go.Figure:
    """One panel per method (at most ``max_cols`` to a row, so ten methods stay readable):
    histograms of log10 per-sample ``quantity`` for forget/retain/test."""
    names = list(per_method)
    titles = []
    for name in names:
        m = (mia or {}).get(name)
        titles.append(f"{name}<br><span style='font-size:11px'>MIA {100 * m:.1f}%</span>" if m is not None else name)
    n = max(1, len(names))
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, shared_xaxes=True, subplot_titles=titles or [""],
                        horizontal_spacing=0.04, vertical_spacing=0.16 if rows > 1 else 0.1)
    logs = {m: {g: np.log10(np.maximum(np.asarray(v, dtype=np.float64), floor)) for g, v in groups.items()}
            for m, groups in per_method.items()}
    every = [v for groups in logs.values() for v in groups.values() if len(v)]
    lo = float(np.log10(floor))
    hi = float(max(np.concatenate(every).max(), lo + 1.0)) if every else lo + 1.0
    size = (hi - lo) / 40.0
    for i, name in enumerate(names):
        row, col = i // cols + 1, i % cols + 1
        for group, values in logs[name].items():
            fig.add_trace(
                go.Histogram(x=values, name=group, legendgroup=group, showlegend=i == 0,
                             marker_color=GROUP_COLOURS.get(group, TEST), opacity=0.6, histnorm="percent",
                             xbins={"start": lo, "end": hi + size, "size": size},
                             hovertemplate="log10 %{x:.2f}: %{y:.1f}%<extra>" + group + "</extra>"),
                row=row, col=col,
            )
        fig.update_xaxes(nticks=4, row=row, col=col)
        if row == rows or i + cols >= n:  # the lowest panel of each column names the axis
            fig.update_xaxes(title=f"log10 {quantity}", row=row, col=col)
    for row in range(1, rows + 1):
        fig.update_yaxes(title="% of group" if row == (rows + 1) // 2 else None, nticks=4, row=row, col=1)
    return _style(fig, f"Per-sample {quantity} on forget / retain / test, per method", height=180 + 240 * rows,
                  barmode="overlay", legend="bottom")


def instance_grid_figure(
    images: np.ndarray,
    labels: Sequence[int],
    predictions: Mapping[str, Sequence[int]],
    classes: Sequence[str],
    indices: Sequence[int] | None = None,
) -> go.Figure:
    """Rows = forgotten images, columns = models (e.g. 'original', then each method).

    Each cell shows the image; its title is the model's prediction, with a ✓ when the image is
    no longer classified as its label (forgotten) and ✗ when it still is.
    """
    models = list(predictions)
    n, cols = len(images), max(1, len(models))
    titles = []
    for i in range(n):
        for model in models:
            pred = int(predictions[model][i])
            mark = "✗ kept" if pred == int(labels[i]) else "✓ forgotten"
            if model == "original":
                mark = "label " + str(classes[int(labels[i])])
            titles.append(f"{classes[pred]} ({mark})")
    fig = make_subplots(rows=max(1, n), cols=cols, subplot_titles=titles or None, horizontal_spacing=0.02,
                        vertical_spacing=min(0.08, 0.3 / max(1, n)))
    for i in range(n):
        rgb = _image_rgb(images[i])
        for j in range(cols):
            fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=i + 1, col=j + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for j, model in enumerate(models):
        fig.add_annotation(text=f"<b>{model}</b>", x=(j + 0.5) / cols, y=1.0, xref="paper", yref="paper",
                           yanchor="bottom", yshift=18, showarrow=False)
    if indices is not None:
        for i, index in enumerate(indices):
            fig.add_annotation(text=f"#{index}", x=0, y=1 - (i + 0.5) / max(1, n), xref="paper", yref="paper",
                               xanchor="right", xshift=-6, showarrow=False, font={"size": 11})
    fig.for_each_annotation(lambda a: a.update(font={"size": 11}) if a.text and not a.text.startswith("<b>") else None)
    return _style(fig, "Forgotten images: prediction per model", height=max(260, 130 * n + 110),
                  margin={"l": 60, "r": 20, "t": 110, "b": 20}, showlegend=False)


def layer_fraction_figure(per_rule: Mapping[str, Mapping[str, float]], p: float | None = None) -> go.Figure:
    """Grouped bars: the fraction (%) of each layer's parameters a selection rule picks."""
    layers: list[str] = []
    for fractions in per_rule.values():
        layers.extend(layer for layer in fractions if layer not in layers)
    fig = go.Figure()
    for rule, fractions in per_rule.items():
        fig.add_bar(name=rule, x=[short_layer_name(name) for name in layers], y=[_pct(fractions.get(name)) for name in layers],
                    marker_color=RULE_COLOURS.get(rule, TEST),
                    hovertemplate="%{x}: %{y:.2f}% selected<extra>" + rule + "</extra>")
    fig.update_yaxes(title="% of the layer selected", rangemode="tozero")
    fig.update_xaxes(title="layer", type="category")
    note = f"top {p:g}% of all entries" if p is not None else None
    return _style(fig, _titled("Selected parameters per layer, by selection rule", note), barmode="group", bargap=0.2)


def p_sweep_figure(
    ps: Sequence[float], forget_acc: Mapping[str, Sequence[float | None]], retain_acc: Mapping[str, Sequence[float | None]]
) -> go.Figure:
    """Forget (solid) and retain (dashed) test accuracy (%) against p, one colour per rule."""
    fig = go.Figure()
    for rule in forget_acc:
        colour = RULE_COLOURS.get(rule, TEST)
        fig.add_scatter(x=list(ps), y=[_pct(v) for v in forget_acc[rule]], name=f"{rule}: forget", mode="lines+markers",
                        line={"color": colour}, hovertemplate="p=%{x}%: forget %{y:.1f}%<extra>" + rule + "</extra>")
        fig.add_scatter(x=list(ps), y=[_pct(v) for v in retain_acc.get(rule, [])], name=f"{rule}: retain",
                        mode="lines+markers", line={"color": colour, "dash": "dash"},
                        hovertemplate="p=%{x}%: retain %{y:.1f}%<extra>" + rule + "</extra>")
    fig.update_xaxes(title="p (% of parameters updated)")
    fig.update_yaxes(title="test accuracy (%)", range=[0, 105])
    return _style(fig, "Forget and retain test accuracy against p")


__all__ = [
    "METHOD_COLOURS", "method_colour", "method_metrics_figure", "gap_figure", "per_class_methods_figure",
    "signal_histograms_figure", "instance_grid_figure", "layer_fraction_figure", "p_sweep_figure",
    "RETAIN", "FORGET",
]
