"""Plotly figures for the audit (did it really forget?): relearning curves and per-class distance.

Same rules as :mod:`unlearning_lab.figures`: pure functions, plain numbers in, one figure out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from .figures import _pct, _style
from .figures_compare import method_colour


def relearn_figure(curves: Mapping[str, Sequence[float]], target: float = 0.5, *, retain_only: bool = False) -> go.Figure:
    """Forget-test accuracy (%) after each fine-tuning step on k forget images (``retain_only``: on retain
    images only, no forget image), one line per model."""
    fig = go.Figure()
    for i, (name, accuracy) in enumerate(curves.items()):
        dash = "dash" if name in ("original", "retrain") else "solid"
        fig.add_scatter(x=list(range(len(accuracy))), y=[_pct(a) for a in accuracy], name=name, mode="lines+markers",
                        line={"color": method_colour(name, i), "dash": dash}, marker={"size": 5},
                        hovertemplate="step %{x}: %{y:.1f}%<extra>" + name + "</extra>")
    fig.add_hline(y=100 * target, line={"color": "#9aa5b1", "dash": "dot"},
                  annotation_text=f"{100 * target:.0f}%: relearned", annotation_position="bottom right")
    fig.update_xaxes(title="fine-tuning steps on retain images only" if retain_only
                     else "fine-tuning steps on the forget images")
    fig.update_yaxes(title="forget-test accuracy (%)", range=[0, 105])
    return _style(fig, "Retain-only relearning: does the class come back unasked?" if retain_only
                  else "Relearning: how fast does the forgotten class come back?")


def class_distance_figure(classes: Sequence[str], per_model: Mapping[str, Sequence[float | None]],
                          forget_classes: Sequence[int]) -> go.Figure:
    """Mean JS divergence to the retrained model per true class (test images), one bar per model."""
    labels = [f"{c} (forgotten)" if i in forget_classes else str(c) for i, c in enumerate(classes)]
    fig = go.Figure()
    for i, (name, values) in enumerate(per_model.items()):
        fig.add_bar(name=name, x=labels, y=list(values), marker_color=method_colour(name, i),
                    hovertemplate="%{x}: %{y:.4f} nats<extra>" + name + "</extra>")
    fig.update_yaxes(title="JS divergence to retrained (nats)", rangemode="tozero")
    # categories, always: with digit class names plotly reads "0".."9" as numbers and drops "5 (forgotten)"
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    return _style(fig, "Distance to the retrained model per class (0: answers as the retrained model does)",
                  barmode="group", bargap=0.2)


def exposed_figure(images, indices: Sequence[int], scores: Sequence[float], model: str) -> go.Figure:
    """The forget images LiRA still calls members most confidently, one row, score in each title."""
    from plotly.subplots import make_subplots

    from .figures import _image_rgb

    n = max(1, len(indices))
    fig = make_subplots(rows=1, cols=n, subplot_titles=[f"#{i}: {s:.2f}" for i, s in zip(indices, scores, strict=True)],
                        horizontal_spacing=0.02)
    for j in range(len(indices)):
        fig.add_trace(go.Image(z=_image_rgb(images[j]), hoverinfo="skip"), row=1, col=j + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, f"Most exposed forget images after {model} (LiRA membership score, 1 = surely a member)",
                  height=260, showlegend=False, margin={"l": 20, "r": 20, "t": 90, "b": 10})
