"""Plotly figure builders for the dashboard and for export: data in, figure out.

Every public ``*_figure`` function is pure: it takes plain numbers, arrays or tensors (never a
Streamlit object), builds one :class:`plotly.graph_objects.Figure` and returns it. Sampling is
seeded, so the same input always gives the same figure. A few small helpers turn library objects
(importances, dampening reports, logits) into the summaries the figures draw; they are pure too
and cheap enough to call once per model and forget request.

Colours are fixed (not left to a theme) so a figure looks the same on screen and exported.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

# ---------------------------------------------------------------------------------------------
# Look

BEFORE = "#7a8ca8"  # the original model
AFTER = "#e4572e"  # the unlearned model
FORGET = "#d1495b"
RETAIN = "#2e86ab"
TEST = "#8d99ae"
SELECTED = "#e4572e"
KEPT = "#9aa5b1"
THRESHOLD = "#111827"
FONT = "Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"

GROUP_COLOURS = {"forget": FORGET, "retain": RETAIN, "test": TEST}

# A small template in the spirit of plotly_white: registering it once and naming it costs far less
# per figure than the full plotly_white template (this matters on every slider move).
_AXIS = {"gridcolor": "#ebf0f8", "linecolor": "#d1d5db", "zerolinecolor": "#e5e7eb", "ticks": "",
         "automargin": True, "title": {"standoff": 12}}
TEMPLATE_NAME = "unlearning_lab"
pio.templates[TEMPLATE_NAME] = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 13, "color": "#1f2937"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": [RETAIN, AFTER, "#6a4c93", "#2a9d8f", "#e9c46a", FORGET, BEFORE, "#264653"],
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hoverlabel": {"align": "left"},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0},
    }
)


def _style_layout(title: str, height: int = 420, legend: str = "top", **layout) -> dict:
    """The shared look as a layout dict: title at the top left, legend on its own line above the plot
    (``legend="top"``) or centred below it (``"bottom"``, for figures whose subplot titles sit above the plots)."""
    legend_layout = (
        {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0}
        if legend == "top"
        else {"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "center", "x": 0.5}
    )
    base = dict(
        template=TEMPLATE_NAME,
        title={"text": title, "x": 0.0, "xanchor": "left", "y": 1.0, "yref": "container", "yanchor": "top",
               "pad": {"t": 14, "l": 4}, "font": {"size": 16}},
        height=height,
        legend=legend_layout,
        margin={"l": 60, "r": 24, "t": 100 if legend == "top" else 84, "b": 56 if legend == "top" else 100},
    )
    base.update(layout)
    return base


def _style(fig: go.Figure, title: str, height: int = 420, legend: str = "top", **layout) -> go.Figure:
    """:func:`_style_layout` applied to a figure."""
    fig.update_layout(**_style_layout(title, height, legend, **layout))
    return fig


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts in one step. The figures a slider move redraws are built this way: plotly
    checks a whole spec about ten times faster than the same figure built call by call (update_layout,
    make_subplots), which was most of a move's redraw on the server."""
    return go.Figure({"data": data, "layout": layout})


def _titled(title: str, note: str | None, below: bool = False) -> str:
    """A title with an optional grey note (e.g. the settings a figure was made with)."""
    if not note:
        return title
    return f"{title}{'<br>' if below else '  '}<span style='font-size:12px;color:#6b7280'>{note}</span>"


def _pct(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else 100.0 * value


def short_layer_name(name: str) -> str:
    """'net.features.0.weight' -> 'features.0.weight' (the wrapper prefix says nothing)."""
    return name[4:] if name.startswith("net.") else name


# ---------------------------------------------------------------------------------------------
# Accuracy shifts

SUMMARY_LABELS = {
    "retain_train_acc": "Retain (train)",
    "retain_test_acc": "Retain (test)",
    "forget_train_acc": "Forget (train)",
    "forget_test_acc": "Forget (test)",
    "test_acc": "All test",
    "mia": "MIA",
}


def accuracy_summary_figure(
    before: Mapping[str, float | None], after: Mapping[str, float | None], note: str | None = None
) -> go.Figure:
    """Grouped bars of the scalar metrics (in %) before and after unlearning."""
    keys = [k for k in SUMMARY_LABELS if k in before or k in after]
    labels = [SUMMARY_LABELS[k] for k in keys]
    data = [{"type": "bar", "name": name, "x": labels, "y": [_pct(values.get(k)) for k in keys],
             "marker": {"color": colour}, "hovertemplate": "%{x}: %{y:.1f}%<extra>" + name + "</extra>"}
            for name, values, colour in (("before", before, BEFORE), ("after", after, AFTER))]
    layout = _style_layout(_titled("Accuracy and MIA", note), barmode="group", bargap=0.25,  # the legend: before, after
                           yaxis={"title": {"text": "%"}, "range": [0, 109]})
    return _figure(data, layout)


def per_class_accuracy_figure(
    classes: Sequence[str],
    before: Sequence[float | None],
    after: Sequence[float | None],
    forget_classes: Sequence[int] = (),
    note: str | None = None,
) -> go.Figure:
    """Per-class test accuracy (%) before vs after; forgotten classes are outlined and marked."""
    labels = [str(c) for c in classes]
    forget = set(int(c) for c in forget_classes)
    line_widths = [3 if i in forget else 0 for i in range(len(labels))]
    data = [
        {"type": "bar", "name": "before", "x": labels, "y": [_pct(v) for v in before], "marker": {"color": BEFORE}},
        {"type": "bar", "name": "after", "x": labels, "y": [_pct(v) for v in after],
         "marker": {"color": [FORGET if i in forget else AFTER for i in range(len(labels))],
                    "line": {"color": THRESHOLD, "width": line_widths}}},
    ]
    marked = [i for i in sorted(forget) if 0 <= i < len(labels)]
    shapes = [{"type": "rect", "xref": "x", "yref": "paper", "x0": i - 0.5, "x1": i + 0.5, "y0": 0, "y1": 1,
               "fillcolor": FORGET, "opacity": 0.08, "line": {"width": 0}, "layer": "below"} for i in marked]
    notes = [{"x": labels[i], "y": 107, "text": "forgotten", "showarrow": False,
              "font": {"color": FORGET, "size": 12}} for i in marked]
    layout = _style_layout(_titled("Per-class test accuracy", note), barmode="group", bargap=0.2,
                           shapes=shapes, annotations=notes,
                           xaxis={"title": {"text": "class"}, "type": "category"},
                           yaxis={"title": {"text": "test accuracy (%)"}, "range": [0, 113],
                                  "tickvals": [0, 20, 40, 60, 80, 100]})
    return _figure(data, layout)


CONFUSION_PANELS = ("before", "after", "after − before")


@lru_cache(maxsize=1)
def _three_panel_layout() -> dict:
    """The axes and panel titles of three side-by-side subplots (make_subplots' layout, built once)."""
    return make_subplots(rows=1, cols=3, subplot_titles=CONFUSION_PANELS, horizontal_spacing=0.07).to_dict()["layout"]


def confusion_matrices_figure(
    classes: Sequence[str], before: Sequence[Sequence[int]], after: Sequence[Sequence[int]], note: str | None = None
) -> go.Figure:
    """Row-normalised test confusion matrices before, after, and after minus before (in %)."""
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    b_pct = 100.0 * b / np.maximum(b.sum(axis=1, keepdims=True), 1)
    a_pct = 100.0 * a / np.maximum(a.sum(axis=1, keepdims=True), 1)
    diff = a_pct - b_pct
    labels = [str(c) for c in classes]
    layout = copy.deepcopy(_three_panel_layout())
    hover = "true %{y}<br>predicted %{x}<br>%{z:.1f}%<extra></extra>"
    shared_bar = {"x": 1.0, "y": 0.78, "len": 0.5, "thickness": 10, "ticksuffix": "%", "title": {"text": "rate"}}
    diff_bar = {"x": 1.0, "y": 0.22, "len": 0.5, "thickness": 10, "ticksuffix": "%", "title": {"text": "change"}}
    data = []
    for col, (z, scale, zmin, zmax, bar) in enumerate(
        ((b_pct, "Blues", 0, 100, None), (a_pct, "Blues", 0, 100, shared_bar), (diff, "RdBu_r", -100, 100, diff_bar)),
        start=1,
    ):
        suffix = str(col) if col > 1 else ""
        trace = {"type": "heatmap", "z": z, "x": labels, "y": labels, "colorscale": scale, "zmin": zmin, "zmax": zmax,
                 "hovertemplate": hover, "showscale": bar is not None, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
        if bar is not None:
            trace["colorbar"] = bar
        data.append(trace)
        layout[f"xaxis{suffix}"].update(title={"text": "predicted"}, type="category", constrain="domain")
        layout[f"yaxis{suffix}"].update(type="category", autorange="reversed", scaleanchor=f"x{suffix}")
    layout["yaxis"]["title"] = {"text": "true class"}
    layout.update(_style_layout(_titled("Test confusion matrices (row-normalised)", note), height=450,
                                margin={"l": 60, "r": 90, "t": 84, "b": 56}))
    return _figure(data, layout)


# ---------------------------------------------------------------------------------------------
# Importance ratios


@dataclass(frozen=True)
class LayerRatioSummary:
    """How log10(I_f / I_D) is distributed over one parameter tensor (alpha-independent)."""

    name: str
    size: int
    n_finite: int  # entries with I_f > 0 and I_D > 0
    n_full_zero: int  # I_f > 0 but I_D = 0: selected at every alpha
    n_forget_zero: int  # I_f = 0: never selected
    p01: float
    p25: float
    p50: float
    p75: float
    p99: float
    mean: float
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]


RATIO_BINS = tuple(float(v) for v in np.linspace(-6.0, 6.0, 97))


def layer_ratio_summaries(
    full_importance: Mapping[str, torch.Tensor],
    forget_importance: Mapping[str, torch.Tensor],
    bins: Sequence[float] = RATIO_BINS,
    max_samples: int = 200_000,
) -> list[LayerRatioSummary]:
    """Quantiles and a histogram of log10(I_f / I_D) per parameter tensor (values outside the
    bins are counted in the first or last bin)."""
    edges = np.asarray(bins, dtype=np.float64)
    out: list[LayerRatioSummary] = []
    for name, full in full_importance.items():
        forget = forget_importance[name]
        f = full.detach().double().flatten().cpu()
        g = forget.detach().double().flatten().cpu()
        finite = (f > 0) & (g > 0) & torch.isfinite(f) & torch.isfinite(g)
        ratio = (torch.log10(g[finite]) - torch.log10(f[finite])).numpy()
        n_full_zero = int(((f == 0) & (g > 0)).sum())
        n_forget_zero = int((g <= 0).sum())
        if ratio.size:
            sample = ratio if ratio.size <= max_samples else ratio[:: ratio.size // max_samples + 1]
            q = np.quantile(sample, [0.01, 0.25, 0.5, 0.75, 0.99])
            counts, _ = np.histogram(np.clip(ratio, edges[0], edges[-1]), bins=edges)
            mean = float(ratio.mean())
        else:
            q = np.full(5, np.nan)
            counts = np.zeros(len(edges) - 1, dtype=np.int64)
            mean = float("nan")
        out.append(
            LayerRatioSummary(
                name=name, size=int(f.numel()), n_finite=int(ratio.size), n_full_zero=n_full_zero,
                n_forget_zero=n_forget_zero, p01=float(q[0]), p25=float(q[1]), p50=float(q[2]),
                p75=float(q[3]), p99=float(q[4]), mean=mean,
                hist_edges=tuple(float(e) for e in edges), hist_counts=tuple(int(c) for c in counts),
            )
        )
    return out


def importance_ratio_figure(summaries: Sequence[LayerRatioSummary], alpha: float) -> go.Figure:
    """Per-layer box (1st/25th/50th/75th/99th percentiles) of log10(I_f/I_D), with log10(alpha)."""
    rows = [s for s in summaries if s.n_finite > 0]
    labels = [short_layer_name(s.name) for s in rows]
    fig = go.Figure(
        go.Box(
            x=labels,
            q1=[s.p25 for s in rows],
            median=[s.p50 for s in rows],
            q3=[s.p75 for s in rows],
            lowerfence=[s.p01 for s in rows],
            upperfence=[s.p99 for s in rows],
            mean=[s.mean for s in rows],
            name="log10(I_f / I_D)",
            marker_color=RETAIN,
            fillcolor="rgba(46,134,171,0.25)",
            line={"width": 1.5},
            boxpoints=False,
            hovertemplate="%{x}<extra></extra>",
        )
    )
    threshold = math.log10(alpha)
    fig.add_hline(
        y=threshold, line={"color": SELECTED, "width": 2, "dash": "dash"},
        annotation_text=f"log10(α) = {threshold:.2f}: dampened above", annotation_position="top right",
        annotation_font_color=SELECTED,
    )
    fig.update_yaxes(title="log10(I_f / I_D)", zeroline=True, zerolinecolor="#d1d5db")
    fig.update_xaxes(title="parameter tensor", tickangle=-35, categoryorder="array", categoryarray=labels)
    fig.update_layout(showlegend=False)
    return _style(fig, "Importance ratio per layer (whiskers: 1st–99th percentile)", height=460)


def ratio_histogram_figure(summary: LayerRatioSummary, alpha: float) -> go.Figure:
    """Histogram of log10(I_f/I_D) for one tensor; bins right of log10(alpha) are dampened."""
    edges = np.asarray(summary.hist_edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 1.0
    threshold = math.log10(alpha)
    colours = [SELECTED if c - width / 2 >= threshold else KEPT for c in centres]
    fig = go.Figure(
        go.Bar(x=centres, y=list(summary.hist_counts), width=width, marker_color=colours,
               hovertemplate="log ratio %{x:.2f}<br>%{y} entries<extra></extra>")
    )
    fig.add_vline(x=threshold, line={"color": SELECTED, "width": 2, "dash": "dash"},
                  annotation_text=f"log10(α) = {threshold:.2f}", annotation_position="top right")
    note = f"I_D = 0: {summary.n_full_zero} (always dampened) · I_f = 0: {summary.n_forget_zero} (never)"
    fig.update_xaxes(title="log10(I_f / I_D)")
    fig.update_yaxes(title="entries")
    return _style(fig, _titled(f"Importance ratios of {short_layer_name(summary.name)}", note, below=True), height=420,
                  showlegend=False)


def selected_fraction_figure(
    names: Sequence[str], fractions: Sequence[float], selected: Sequence[int], sizes: Sequence[int]
) -> go.Figure:
    """Fraction (%) of each parameter tensor selected for dampening at the current alpha."""
    labels = [short_layer_name(n) for n in names]
    y = [100.0 * f for f in fractions]
    fig = go.Figure(
        go.Bar(
            x=labels, y=y, marker_color=SELECTED,
            text=[f"{s:,}/{n:,}" for s, n in zip(selected, sizes)], textposition="outside", cliponaxis=False,
            hovertemplate="%{x}<br>%{y:.2f}% selected (%{text})<extra></extra>",
        )
    )
    top = max([0.0, *y])
    fig.update_yaxes(title="selected (%)", range=[0, max(5.0, top * 1.18)])
    fig.update_xaxes(title="parameter tensor", tickangle=-35, categoryorder="array", categoryarray=labels)
    return _style(fig, "Parameters selected per layer", height=430, showlegend=False)


@dataclass(frozen=True)
class ImportanceSample:
    """A seeded sample of (I_D, I_f) pairs across all tensors, for a log-log scatter."""

    full: np.ndarray
    forget: np.ndarray
    layer: np.ndarray  # index into ``names``
    names: tuple[str, ...]
    total: int  # entries the sample was drawn from (both importances > 0)


def sample_importances(
    full_importance: Mapping[str, torch.Tensor],
    forget_importance: Mapping[str, torch.Tensor],
    n: int = 4000,
    seed: int = 0,
) -> ImportanceSample:
    """Uniformly sample up to ``n`` entries with I_D > 0 and I_f > 0 (seeded)."""
    names = tuple(full_importance)
    fulls, forgets, layers = [], [], []
    for i, name in enumerate(names):
        f = full_importance[name].detach().float().flatten().cpu()
        g = forget_importance[name].detach().float().flatten().cpu()
        keep = (f > 0) & (g > 0)
        fulls.append(f[keep].numpy())
        forgets.append(g[keep].numpy())
        layers.append(np.full(int(keep.sum()), i, dtype=np.int32))
    full = np.concatenate(fulls) if fulls else np.zeros(0)
    forget = np.concatenate(forgets) if forgets else np.zeros(0)
    layer = np.concatenate(layers) if layers else np.zeros(0, dtype=np.int32)
    total = int(full.size)
    if total > n:
        pick = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
        full, forget, layer = full[pick], forget[pick], layer[pick]
    return ImportanceSample(full, forget, layer, names, total)


def importance_scatter_figure(sample: ImportanceSample, alpha: float) -> go.Figure:
    """Log-log scatter of I_D vs I_f; points above the line I_f = alpha * I_D are dampened."""
    selected = sample.forget > alpha * sample.full
    layer_names = np.asarray([short_layer_name(n) for n in sample.names] or [""], dtype=object)
    fig = go.Figure()
    for mask, label, colour in ((~selected, "kept", KEPT), (selected, "dampened", SELECTED)):
        fig.add_trace(
            go.Scatter(
                x=sample.full[mask], y=sample.forget[mask], mode="markers", name=f"{label} ({int(mask.sum())})",
                marker={"size": 4, "color": colour, "opacity": 0.55},
                customdata=layer_names[sample.layer[mask]] if sample.layer.size else None,
                hovertemplate="%{customdata}<br>I_D %{x:.2e}<br>I_f %{y:.2e}<extra></extra>",
            )
        )
    if sample.full.size:
        x_lo, x_hi = float(np.log10(sample.full.min())) - 0.3, float(np.log10(sample.full.max())) + 0.3
        y_lo, y_hi = float(np.log10(sample.forget.min())) - 0.3, float(np.log10(sample.forget.max())) + 0.3
        xs = np.logspace(x_lo, x_hi, 2)
        fig.add_trace(
            go.Scatter(x=xs, y=alpha * xs, mode="lines", name=f"I_f = α·I_D (α = {alpha:g})",
                       line={"color": THRESHOLD, "width": 2, "dash": "dash"}, hoverinfo="skip")
        )
        fig.update_xaxes(range=[x_lo, x_hi])  # log axes take log10 ranges
        fig.update_yaxes(range=[y_lo, y_hi])
    fig.update_xaxes(type="log", title="I_D (importance on all training data)", exponentformat="power")
    fig.update_yaxes(type="log", title="I_f (importance on the forget set)", exponentformat="power")
    title = f"I_D vs I_f ({sample.full.size:,} of {sample.total:,} entries sampled)"
    return _style(fig, title, height=480)


# ---------------------------------------------------------------------------------------------
# Dampened weights


def weights_figure(before: torch.Tensor | np.ndarray, after: torch.Tensor | np.ndarray, name: str,
                   n: int = 4000, seed: int = 0) -> go.Figure:
    """Scatter of each weight before (x) and after (y) dampening for one tensor (sampled)."""
    b = np.asarray(before.detach().cpu() if isinstance(before, torch.Tensor) else before, dtype=np.float64).ravel()
    a = np.asarray(after.detach().cpu() if isinstance(after, torch.Tensor) else after, dtype=np.float64).ravel()
    changed = a != b
    idx = np.arange(b.size)
    if b.size > n:
        idx = np.sort(np.random.default_rng(seed).choice(b.size, size=n, replace=False))
    fig = go.Figure()
    for mask, label, colour in ((~changed[idx], "unchanged", KEPT), (changed[idx], "dampened", SELECTED)):
        fig.add_trace(
            go.Scatter(x=b[idx][mask], y=a[idx][mask], mode="markers", name=f"{label} ({int(mask.sum())} shown)",
                         marker={"size": 5, "color": colour, "opacity": 0.6},
                         hovertemplate="before %{x:.4f}<br>after %{y:.4f}<extra></extra>")
        )
    if b.size:
        lim = float(np.abs(b).max()) or 1.0
        fig.add_trace(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="lines", name="unchanged (y = x)",
                                 line={"color": "#cbd5e1", "dash": "dot"}, hoverinfo="skip"))
    total_changed = int(changed.sum())
    fig.update_xaxes(title="weight before", zeroline=True, zerolinecolor="#e5e7eb")
    fig.update_yaxes(title="weight after", zeroline=True, zerolinecolor="#e5e7eb")
    title = f"{short_layer_name(name)}: {total_changed:,} of {b.size:,} weights dampened"
    return _style(fig, title, height=460)


def dampening_map(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """Fraction of each kernel's (conv: per output x input channel) or weight's L2 norm removed."""
    b = before.detach().double().cpu()
    a = after.detach().double().cpu()
    if b.dim() > 2:
        b_norm = b.flatten(2).norm(dim=2)
        a_norm = a.flatten(2).norm(dim=2)
    elif b.dim() == 2:
        b_norm, a_norm = b.abs(), a.abs()
    else:
        b_norm, a_norm = b.abs().view(-1, 1), a.abs().view(-1, 1)
    removed = torch.where(b_norm > 0, 1.0 - a_norm / b_norm.clamp_min(1e-30), torch.zeros_like(b_norm))
    return removed.clamp(0.0, 1.0).numpy()


def filter_dampening_figure(before: torch.Tensor, after: torch.Tensor, name: str) -> go.Figure:
    """Heatmap: for each filter (row) and input channel (column), the share of the kernel's norm
    removed by dampening; the side bar gives each whole filter's share."""
    removed = dampening_map(before, after)
    b = before.detach().double().cpu()
    a = after.detach().double().cpu()
    per_filter = (1.0 - a.flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1).clamp_min(1e-30)).clamp(0, 1).numpy()
    rows = [str(i) for i in range(removed.shape[0])]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.74, 0.26], shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("per filter × input channel", "whole filter"))
    fig.add_trace(
        go.Heatmap(z=100 * removed, y=rows, colorscale="OrRd", zmin=0, zmax=100,
                   colorbar={"title": {"text": "% removed"}, "thickness": 10, "x": -0.2, "xanchor": "left",
                             "orientation": "h", "y": -0.06, "yanchor": "top", "len": 0.5},
                   hovertemplate="filter %{y}<br>input channel %{x}<br>%{z:.1f}% of norm removed<extra></extra>"),
        row=1, col=1,
    )
    fig.add_trace(
        go.Bar(x=100 * per_filter, y=rows, orientation="h", marker_color=SELECTED,
               hovertemplate="filter %{y}: %{x:.1f}% removed<extra></extra>", showlegend=False),
        row=1, col=2,
    )
    fig.update_yaxes(title="output filter", autorange="reversed", type="category", row=1, col=1)
    fig.update_xaxes(title="input channel", row=1, col=1)
    fig.update_xaxes(title="%", range=[0, 100], row=1, col=2)
    height = int(min(900, max(360, 14 * removed.shape[0] + 140)))
    return _style(fig, f"How much each filter of {short_layer_name(name)} was dampened", height=height + 60,
                  legend="bottom")


# ---------------------------------------------------------------------------------------------
# Saliency


def _image_rgb(image: np.ndarray) -> np.ndarray:
    """(C,H,W) uint8 or float in [0,1] -> (H,W,3) uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return np.ascontiguousarray(img[:3].transpose(1, 2, 0))


def saliency_figure(
    images: np.ndarray,
    before_maps: np.ndarray,
    after_maps: np.ndarray,
    row_labels: Sequence[str],
    method_label: str,
) -> go.Figure:
    """Rows = images; columns = input, attribution before, after (one shared colour scale per
    row) and after − before (diverging, symmetric)."""
    n = len(images)
    fig = make_subplots(
        rows=n, cols=4, horizontal_spacing=0.02, vertical_spacing=0.025 if n > 1 else 0.0,
        column_titles=["input", "before", "after", "after − before"],
    )
    for i in range(n):
        before, after = np.asarray(before_maps[i], dtype=np.float64), np.asarray(after_maps[i], dtype=np.float64)
        vmax = float(max(before.max(initial=0.0), after.max(initial=0.0))) or 1.0
        diff = after - before
        dmax = float(np.abs(diff).max(initial=0.0)) or 1.0
        fig.add_trace(go.Image(z=_image_rgb(images[i]), hoverinfo="skip"), row=i + 1, col=1)
        for col, z in ((2, before), (3, after)):
            fig.add_trace(
                go.Heatmap(z=z, zmin=0, zmax=vmax, colorscale="Inferno", showscale=False,
                           hovertemplate="%{z:.3g}<extra></extra>"),
                row=i + 1, col=col,
            )
        fig.add_trace(
            go.Heatmap(z=diff, zmin=-dmax, zmax=dmax, colorscale="RdBu_r", showscale=False,
                       hovertemplate="%{z:.3g}<extra></extra>"),
            row=i + 1, col=4,
        )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    for i in range(n):
        for col in range(1, 5):
            axis = i * 4 + col
            fig.update_yaxes(scaleanchor=f"x{axis if axis > 1 else ''}", row=i + 1, col=col)
    fig.for_each_annotation(lambda a: a.update(font={"size": 12}))
    for i in range(n):  # each row's label, horizontal and wrapped, left of its input image (long class names
        # such as Fashion-MNIST's "T-shirt/top" ran into the next row as rotated axis titles)
        label = wrap_label(str(row_labels[i])) if i < len(row_labels) else ""
        domain = fig.get_subplot(i + 1, 1).yaxis.domain
        fig.add_annotation(text=label, xref="paper", yref="paper", x=0, y=(domain[0] + domain[1]) / 2,
                           xanchor="right", yanchor="middle", xshift=-8, align="right", showarrow=False,
                           font={"size": 11})
    return _style(fig, f"{method_label}: attribution before vs after unlearning", height=max(320, 150 * n + 90),
                  margin={"l": SALIENCY_LABEL_PX, "r": 20, "t": 80, "b": 20})


SALIENCY_LABEL_PX = 140  # the left margin the saliency rows' labels sit in
SALIENCY_LABEL_CHARS = 18  # about what fits in it at 11 px


def wrap_label(text: str, width: int = SALIENCY_LABEL_CHARS) -> str:
    """``text`` with each ``<br>``-separated line broken at spaces into lines of at most ``width``
    characters (a single longer word stays whole)."""
    lines: list[str] = []
    for part in text.split("<br>"):
        line = ""
        for word in part.split(" "):
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "<br>".join(lines)


# ---------------------------------------------------------------------------------------------
# Forgetting signal


def forgetting_signal_figure(
    groups: Mapping[str, tuple[np.ndarray, np.ndarray]],
    quantity: str = "loss",
    mia: tuple[float | None, float | None] | None = None,
    floor: float = 1e-6,
) -> go.Figure:
    """Histograms of log10 of a per-sample quantity (loss or entropy) per group, before and after.

    ``groups`` maps 'forget' / 'retain' / 'test' to (before values, after values). Values are
    floored at ``floor`` before the log (a confident correct prediction has a loss near 0).
    """
    titles = ["before", "after"]
    if mia is not None:
        titles = [f"{t} (MIA {100 * m:.1f}%)" if m is not None else t for t, m in zip(titles, mia)]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, shared_xaxes=True, subplot_titles=titles,
                        horizontal_spacing=0.05)
    logs = {g: tuple(np.log10(np.maximum(np.asarray(v, dtype=np.float64), floor)) for v in pair)
            for g, pair in groups.items()}
    every = [v for pair in logs.values() for v in pair if len(v)]
    lo = float(np.log10(floor))
    hi = float(max(np.concatenate(every).max(), lo + 1.0)) if every else lo + 1.0
    size = (hi - lo) / 50.0
    for col, which in ((1, 0), (2, 1)):
        for group, pair in logs.items():
            values = pair[which]
            fig.add_trace(
                go.Histogram(x=values, name=f"{group} ({len(values)})", legendgroup=group, showlegend=col == 1,
                             marker_color=GROUP_COLOURS.get(group, TEST), opacity=0.6, histnorm="percent",
                             xbins={"start": lo, "end": hi + size, "size": size},
                             hovertemplate="log10 %{x:.2f}: %{y:.1f}%<extra></extra>"),
                row=1, col=col,
            )
        unit = " (nats)" if quantity == "entropy" else ""
        fig.update_xaxes(title=f"log10 per-sample {quantity}{unit}", row=1, col=col)
    fig.update_yaxes(title="% of the group", row=1, col=1)
    return _style(fig, f"Per-sample {quantity}: what a membership-inference attack sees", height=440,
                  barmode="overlay", legend="bottom")


# ---------------------------------------------------------------------------------------------
# Alpha sweep


def alpha_sweep_figure(
    alphas: Sequence[float],
    forget_acc: Sequence[float | None],
    retain_acc: Sequence[float | None],
    fraction_dampened: Sequence[float],
    current_alpha: float | None = None,
    forget_label: str = "forget (test)",
) -> go.Figure:
    """Forget and retain accuracy and the share of dampened parameters as alpha varies."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=list(alphas), y=[_pct(v) for v in forget_acc], name=f"{forget_label} acc.",
                             mode="lines+markers", line={"color": FORGET, "width": 3}))
    fig.add_trace(go.Scatter(x=list(alphas), y=[_pct(v) for v in retain_acc], name="retain (test) acc.",
                             mode="lines+markers", line={"color": RETAIN, "width": 3}))
    fig.add_trace(go.Scatter(x=list(alphas), y=[100 * f for f in fraction_dampened], name="parameters dampened",
                             mode="lines", line={"color": KEPT, "dash": "dot", "width": 2}), secondary_y=True)
    if current_alpha is not None:  # a trace, not a shape: data coordinates on the log axis
        fig.add_trace(go.Scatter(x=[current_alpha, current_alpha], y=[0, 100], mode="lines+text",
                                 name=f"current α = {current_alpha:.3g}", text=["", f"α = {current_alpha:.3g}"],
                                 # the label on the side with room: the right half of the log axis writes leftwards
                                 textposition="top left" if alphas and current_alpha > (min(alphas) * max(alphas)) ** 0.5
                                 else "top right", line={"color": THRESHOLD, "dash": "dash", "width": 1.5},
                                 hoverinfo="skip"))
    fig.update_xaxes(type="log", title="α (selection threshold, log scale)")
    fig.update_yaxes(title="accuracy (%)", range=[0, 105], secondary_y=False)
    fig.update_yaxes(title="dampened (%)", range=[0, 105], secondary_y=True, showgrid=False)
    return _style(fig, "Alpha sweep: forgetting vs keeping", height=460)


# ---------------------------------------------------------------------------------------------
# Alpha/lambda landscape


def _grid_labels(values: Sequence[float]) -> list[str]:
    return [f"{v:g}" for v in values]


def landscape_heatmap_figure(
    alphas: Sequence[float],
    lams: Sequence[float],
    grid: Sequence[Sequence[float | None]],
    metric_label: str,
    *,
    better: str = "low",
    current: tuple[float, float] | None = None,
    pareto: Sequence[tuple[float, float]] = (),
    note: str | None = None,
    theme: str = "default",
) -> go.Figure:
    """One metric over the (alpha, lambda) grid: rows = lambda, columns = alpha (both shown as
    categories, log-spaced). ``grid`` holds fractions in [0, 1] (None = not computed).

    One colour rule for every metric: the colour shows how good a cell is (yellow best, dark
    worst) and the top of the colour bar is always the best value, its ticks labelled with the
    metric's own percentages. So ``z`` is the goodness (the value itself when ``better`` is
    "high", 1 - value when "low") and the metric's exact values are in ``customdata[..][2]`` (and
    the hover). Pareto settings get a ring, the current setting a square."""
    x, y = _grid_labels(alphas), _grid_labels(lams)
    values = [[None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in row] for row in grid]
    flip = better == "low"
    z = [[None if v is None else (1.0 - v if flip else v) for v in row] for row in values]
    custom = [[[a, lam, v] for a, v in zip(alphas, row)] for lam, row in zip(lams, values)]
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=x, y=y, zmin=0.0, zmax=1.0, colorscale="Viridis", customdata=custom, xgap=1, ygap=1,
            colorbar={"title": {"text": "↑ better"}, "thickness": 12, "tickvals": ticks,
                      "ticktext": [f"{100 * (1 - t if flip else t):.0f}%" for t in ticks]},
            hovertemplate="α %{x}, λ %{y}<br>" + metric_label + ": %{customdata[2]:.1%}<extra></extra>",
            name=metric_label,
        )
    )
    if pareto:
        fig.add_trace(go.Scatter(
            x=[f"{a:g}" for a, _ in pareto], y=[f"{lam:g}" for _, lam in pareto], mode="markers", name="Pareto",
            marker={"symbol": "circle-open", "size": 13, "color": "white", "line": {"width": 2}}, hoverinfo="skip",
        ))
    if current is not None and f"{current[0]:g}" in x and f"{current[1]:g}" in y:
        fig.add_trace(go.Scatter(
            x=[f"{current[0]:g}"], y=[f"{current[1]:g}"], mode="markers", name="current setting",
            marker={"symbol": "square-open", "size": 18, "color": THRESHOLD, "line": {"width": 3}}, hoverinfo="skip",
        ))
    fig.update_xaxes(title="α (selection threshold)", type="category", categoryorder="array", categoryarray=x)
    fig.update_yaxes(title="λ (dampening)", type="category", categoryorder="array", categoryarray=y)
    direction = "lower is better" if better == "low" else "higher is better"
    fig = _style(fig, _titled(metric_label, f"{note} · {direction}" if note else direction, below=True), height=420,
                 showlegend=False, margin={"l": 64, "r": 24, "t": 78, "b": 56})
    return apply_theme(fig, theme)


@dataclass(frozen=True)
class FrontierPoint:
    """One setting of the landscape as the frontier draws it (accuracies are fractions)."""

    alpha: float
    lam: float
    retain: float
    forget: float
    mia: float | None = None
    fraction_selected: float | None = None
    pareto: bool = False


def tradeoff_frontier_figure(
    points: Sequence[FrontierPoint],
    *,
    original: tuple[float, float] | None = None,
    retrained: tuple[float, float] | None = None,
    current: tuple[float, float] | None = None,
    retain_label: str = "retain (test) accuracy",
    forget_label: str = "forget (test) accuracy",
    theme: str = "default",
) -> go.Figure:
    """Retain (x) vs forget (y) accuracy of every setting; Pareto settings (no other setting keeps
    more and forgets more) are drawn as a connected frontier. Every setting trace carries
    ``customdata = [alpha, lambda]`` so a click or box selection can be turned back into a setting.
    ``original`` / ``retrained`` are (retain, forget) reference points; ``current`` = (alpha, lambda)."""

    def hover(p: FrontierPoint) -> str:
        mia = "n/a" if p.mia is None else f"{100 * p.mia:.1f}%"
        damp = "" if p.fraction_selected is None else f" · dampened {100 * p.fraction_selected:.2f}%"
        return (f"α {p.alpha:g}, λ {p.lam:g}<br>retain {100 * p.retain:.1f}% · forget {100 * p.forget:.1f}%"
                f"<br>MIA {mia}{damp}")

    def trace(subset: Sequence[FrontierPoint], name: str, marker: dict, mode: str = "markers") -> go.Scatter:
        return go.Scatter(
            x=[p.retain for p in subset], y=[p.forget for p in subset], mode=mode, name=name, marker=marker,
            customdata=[[p.alpha, p.lam] for p in subset], text=[hover(p) for p in subset],
            hovertemplate="%{text}<extra>" + name + "</extra>",
        )

    others = [p for p in points if not p.pareto]
    front = sorted((p for p in points if p.pareto), key=lambda p: (p.retain, p.forget))
    fig = go.Figure()
    fig.add_trace(trace(others, f"settings ({len(others)})", {"size": 9, "color": KEPT, "opacity": 0.75}))
    fig.add_trace(trace(front, f"Pareto frontier ({len(front)})",
                        {"size": 13, "color": SELECTED, "line": {"color": THRESHOLD, "width": 1}}, mode="lines+markers"))
    fig.data[-1].line = {"color": SELECTED, "width": 2, "shape": "hv"}
    for ref, name, symbol in ((original, "original model", "star"), (retrained, "retrained (gold standard)", "diamond")):
        if ref is not None:
            fig.add_trace(go.Scatter(x=[ref[0]], y=[ref[1]], mode="markers", name=name,
                                     marker={"symbol": symbol, "size": 17, "color": BEFORE if symbol == "star" else RETAIN,
                                             "line": {"color": THRESHOLD, "width": 1}},
                                     hovertemplate=name + ": retain %{x:.1%} · forget %{y:.1%}<extra></extra>"))
    if current is not None:
        match = [p for p in points if p.alpha == current[0] and p.lam == current[1]]
        if match:
            fig.add_trace(go.Scatter(x=[match[0].retain], y=[match[0].forget], mode="markers",
                                     name=f"current (α {current[0]:g}, λ {current[1]:g})",
                                     marker={"symbol": "circle-open", "size": 22, "color": THRESHOLD, "line": {"width": 3}},
                                     hoverinfo="skip"))
    fig.update_xaxes(title=f"{retain_label} → keep more", tickformat=".0%")
    fig.update_yaxes(title=f"{forget_label} → forget more ↓", tickformat=".0%")
    fig = _style(fig, _titled("Trade-off frontier", "each point is one (α, λ); click or box-select to use it"),
                 height=500)
    return apply_theme(fig, theme)


# ---------------------------------------------------------------------------------------------
# Themes: the default look, and a projector-friendly one


OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
    "grey": "#7F7F7F",
}


@dataclass(frozen=True)
class Theme:
    """How figures look: a plotly template, a colour substitution and type sizes."""

    name: str
    template: str
    colours: Mapping[str, str]  # default colour (lower-case hex or rgba string) -> this theme's
    font_size: int
    title_size: int
    annotation_size: int
    marker_scale: float = 1.0
    line_scale: float = 1.0
    extra_top_margin: int = 0


PRESENTATION_TEMPLATE = "unlearning_lab_presentation"
pio.templates[PRESENTATION_TEMPLATE] = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 20, "color": "#000000"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": [OKABE_ITO[k] for k in ("blue", "orange", "bluish_green", "vermillion", "reddish_purple",
                                            "sky_blue", "yellow", "black")],
        "xaxis": {**_AXIS, "gridcolor": "#d9d9d9", "linecolor": "#000000", "linewidth": 2, "tickfont": {"size": 18}},
        "yaxis": {**_AXIS, "gridcolor": "#d9d9d9", "linecolor": "#000000", "linewidth": 2, "tickfont": {"size": 18}},
        "hoverlabel": {"align": "left", "font": {"size": 18}},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0, "font": {"size": 18}},
    }
)

# the default colours and what the projector theme draws instead (colour-blind safe, high contrast)
PRESENTATION_COLOURS: dict[str, str] = {
    BEFORE: OKABE_ITO["sky_blue"],
    AFTER: OKABE_ITO["orange"],
    FORGET: OKABE_ITO["vermillion"],
    RETAIN: OKABE_ITO["blue"],
    TEST: OKABE_ITO["grey"],
    KEPT: OKABE_ITO["grey"],
    THRESHOLD: OKABE_ITO["black"],
    "#6a4c93": OKABE_ITO["reddish_purple"],
    "#2a9d8f": OKABE_ITO["bluish_green"],
    "#e9c46a": OKABE_ITO["yellow"],
    "#264653": OKABE_ITO["black"],
    "#cbd5e1": "#595959",
    "#6b7280": "#333333",
    "rgba(46,134,171,0.25)": "rgba(0,114,178,0.25)",
}

THEMES: dict[str, Theme] = {
    "default": Theme("default", TEMPLATE_NAME, {}, 13, 16, 12),
    "presentation": Theme(
        "presentation", PRESENTATION_TEMPLATE, {k.lower(): v for k, v in PRESENTATION_COLOURS.items()},
        font_size=20, title_size=24, annotation_size=18, marker_scale=1.5, line_scale=1.6, extra_top_margin=24,
    ),
}


def _swap_colours(value, colours: Mapping[str, str]):
    """``value`` with every colour string found in ``colours`` replaced (recursively)."""
    if isinstance(value, str):
        key = value.lower().replace(" ", "")
        if key in colours:
            return colours[key]
        if "color:" in key:  # inline styles in titles, e.g. <span style='color:#6b7280'>
            for old, new in colours.items():
                if old.startswith("#"):
                    value = re.sub(re.escape(old), new, value, flags=re.IGNORECASE)
        return value
    if isinstance(value, dict):
        return {k: _swap_colours(v, colours) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) for v in value):
            return value
        return type(value)(_swap_colours(v, colours) for v in value)
    return value


PRESENTATION_TITLE_CHARS = 40  # what a projector-size title holds on one line of a figure on a 1024-px screen


def _wrap_title(text: str, width: int) -> str:
    """``text`` with its title part (before any ``<br>`` or ``<span``) broken at spaces into lines of at most
    ``width`` characters."""
    marks = [i for i in (text.find("<br>"), text.find("<span")) if i >= 0]
    cut = min(marks) if marks else len(text)
    head, tail = text[:cut], text[cut:]
    lines = []
    while len(head) > width and (space := head.rfind(" ", 0, width + 1)) > 0:
        lines.append(head[:space])
        head = head[space + 1:]
    return "<br>".join([*lines, head]) + tail


def _scale_inline_fonts(text: str, minimum: int) -> str:
    """Raise every inline ``font-size:Npx`` in an HTML-ish plotly text to at least ``minimum``."""
    return re.sub(r"font-size:\s*(\d+)px", lambda m: f"font-size:{max(int(m.group(1)), minimum)}px", text)


def _scale_sizes(trace: dict, theme: Theme) -> None:
    marker = trace.get("marker")
    if isinstance(marker, dict) and isinstance(marker.get("size"), (int, float)):
        marker["size"] = marker["size"] * theme.marker_scale
    line = trace.get("line")
    if isinstance(line, dict) and isinstance(line.get("width"), (int, float)):
        line["width"] = line["width"] * theme.line_scale
    elif trace.get("type") == "scatter" and "lines" in str(trace.get("mode", "")):
        trace["line"] = {**(line or {}), "width": 2 * theme.line_scale}


def apply_theme(fig: go.Figure, theme: str | Theme = "default") -> go.Figure:
    """The figure drawn in ``theme``: "default" returns it unchanged; "presentation" gives larger
    type, thicker lines and bigger markers, and swaps every default colour for its Okabe-Ito
    counterpart (colour-blind safe, high contrast on a projector). Returns a new figure; the data
    (x, y, z values) is untouched."""
    spec = THEMES[theme] if isinstance(theme, str) else theme
    if spec.name == "default":
        return fig
    data = fig.to_plotly_json()
    traces = [_swap_colours(dict(t), spec.colours) for t in data.get("data", [])]
    for t in traces:
        _scale_sizes(t, spec)
    layout = _swap_colours(dict(data.get("layout", {})), spec.colours)
    layout["template"] = pio.templates[spec.template]
    title = layout.get("title")
    added_lines = 0
    if isinstance(title, dict):
        title.setdefault("font", {})["size"] = spec.title_size
        if isinstance(title.get("text"), str):  # inline notes like <span style='font-size:12px'>
            # at projector sizes a note beside the title, or a long title, runs past the figure: break the lines
            text = title["text"]
            wrapped = _wrap_title(text.replace("  <span", "<br><span"), PRESENTATION_TITLE_CHARS)
            added_lines = wrapped.count("<br>") - text.count("<br>")
            title["text"] = _scale_inline_fonts(wrapped, spec.annotation_size)
    for annotation in layout.get("annotations", []) or []:
        annotation.setdefault("font", {})
        annotation["font"]["size"] = max(annotation["font"].get("size") or 0, spec.annotation_size)
    for shape in layout.get("shapes", []) or []:
        line = shape.get("line")
        if isinstance(line, dict) and isinstance(line.get("width"), (int, float)):
            line["width"] = line["width"] * spec.line_scale
    margin = layout.get("margin") or {}
    if margin or added_lines:
        margin = dict(margin)
        margin["t"] = (margin.get("t") or 80) + spec.extra_top_margin + 28 * added_lines
        margin["l"] = (margin.get("l") or 60) + 16
        margin["b"] = (margin.get("b") or 56) + 16
        layout["margin"] = margin
    if isinstance(layout.get("height"), (int, float)):
        layout["height"] = int(layout["height"] * 1.12)
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False)


# ---------------------------------------------------------------------------------------------
# The forgetting signal's data


def signal_caption(request_kind: str) -> str:
    """How to read the forgetting signal, for the kind of request: a whole class's losses sit far above the
    test set's after retraining (the model never learnt the class), random samples' look like test images."""
    if request_kind in ("class", "subclass"):
        return ("Before, the forget set (red) looks like the retain set (blue): low loss, the model knows it. After "
                "good unlearning of a whole class its losses sit far above the test set's (grey), as they do for a "
                "model retrained without the class, which has never seen it.")
    return ("Before, the forget set (red) looks like the retain set (blue). After good unlearning of these samples "
            "it looks like the test set (grey), as it does for retrain: the model treats them as images it never "
            "trained on.")


SIGNAL_PER_GROUP = 2000  # images per group the forgetting signal reads


def signal_sample(split: Any, seed: int = 0, max_per_group: int = SIGNAL_PER_GROUP) -> dict[str, np.ndarray]:
    """The images the forgetting signal reads: forget-train and retain-train (training-set indices) and test
    (test-set indices), each group capped at ``max_per_group`` by a seeded sample, so that every model is read
    on the same images and two models' values line up image by image."""
    rng = np.random.default_rng(seed)

    def cap(index: torch.Tensor) -> np.ndarray:
        idx = index.numpy()
        return np.sort(rng.choice(idx, size=max_per_group, replace=False)) if idx.size > max_per_group else idx

    forget_idx, retain_idx = cap(split.forget_train.indices), cap(split.retain_train.indices)
    return {"forget": forget_idx, "retain": retain_idx, "test": cap(torch.arange(len(split.dataset.test_y)))}


def signal_values(outputs: Any, split: Any, quantity: str, seed: int = 0,
                  max_per_group: int = SIGNAL_PER_GROUP) -> dict[str, np.ndarray]:
    """Per-sample ``quantity`` ("loss" or "entropy") of one model on the images :func:`signal_sample` picks.
    ``outputs``: the model's ``SplitOutputs`` on every image, or a mapping from each group to its logits on
    exactly those images (what a page that samples its cards computes: a pass over them only)."""
    from ssd_core.metrics import entropy, per_sample_loss

    ds = split.dataset
    out = {}
    for group, idx in signal_sample(split, seed, max_per_group).items():
        chosen = torch.from_numpy(idx)
        if isinstance(outputs, Mapping):
            logits = outputs[group]
        else:
            logits = (outputs.test_logits if group == "test" else outputs.train_logits)[chosen]
        labels = (ds.test_y if group == "test" else ds.train_y)[chosen]
        out[group] = (entropy(logits) if quantity == "entropy" else per_sample_loss(logits, labels)).numpy()
    return out
