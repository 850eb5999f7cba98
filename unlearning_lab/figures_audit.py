"""Plotly figures for the audit (did it really forget?): relearning curves, per-class distance, layer by layer
and the picture of hiding.

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


def _block_label(name: str) -> str:
    """A block's path as a short axis label ('net.layer2.1' -> 'layer2.1')."""
    return name.removeprefix("net.")


def layers_figure(models: Mapping[str, Sequence[Mapping]], floor: Mapping[str, float | None], unlearned: str
                  ) -> go.Figure:
    """Two panels over depth: the ``unlearned`` model's linear CKA to the original and to the retrained model on
    forget images; and the per-block probe's accuracy on the forgotten class for every model in ``models``
    (name -> layer rows as dicts), with a random network's as the floor."""
    from plotly.subplots import make_subplots

    rows = models[unlearned]
    blocks = [_block_label(r["block"]) for r in rows]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=[
        f"{unlearned}: similarity to each model (CKA, forget images)", "A linear probe at each block reads the class"])
    fig.add_scatter(x=blocks, y=[r["cka_original_forget"] for r in rows], name="CKA to the original", mode="lines+markers",
                    line={"color": method_colour("original", 0)}, row=1, col=1,
                    hovertemplate="%{x}: %{y:.3f}<extra>to the original</extra>")
    fig.add_scatter(x=blocks, y=[r["cka_retrained_forget"] for r in rows], name="CKA to the retrained model",
                    mode="lines+markers", line={"color": method_colour("retrain", 1)}, row=1, col=1,
                    hovertemplate="%{x}: %{y:.3f}<extra>to the retrained model</extra>")
    for i, (name, layer_rows) in enumerate(models.items()):
        fig.add_scatter(x=[_block_label(r["block"]) for r in layer_rows], y=[_pct(r["probe"]) for r in layer_rows],
                        name=f"probe: {name}", mode="lines+markers", row=1, col=2,
                        line={"color": method_colour(name, i), "dash": "dash" if name in ("original", "retrain") else "solid"},
                        hovertemplate="%{x}: %{y:.1f}%<extra>" + name + "</extra>")
    fig.add_scatter(x=[_block_label(b) for b in floor], y=[_pct(v) for v in floor.values()], name="probe: random network",
                    mode="lines", line={"color": "#9aa5b1", "dash": "dot"}, row=1, col=2,
                    hovertemplate="%{x}: %{y:.1f}%<extra>random network (floor)</extra>")
    fig.update_yaxes(title="linear CKA (1: the same)", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title="probe accuracy on the class (%)", range=[0, 105], row=1, col=2)
    fig.update_xaxes(title="block (input → output)", type="category")
    return _style(fig, "Layer by layer: where does the model still hold the class?", height=460, legend="bottom")


def embedding_figure(embeddings: Mapping[str, Mapping], classes: Sequence[str], forget_classes: Sequence[int]
                     ) -> go.Figure:
    """One panel per model (name -> Embedding as a dict): its penultimate features in 2-D (PCA or UMAP, unit
    variance per axis, so the panels share their axes), the forgotten class in red and the others in grey."""
    from plotly.subplots import make_subplots

    names = list(embeddings)
    axis = "UMAP" if any(e.get("method") == "umap" for e in embeddings.values()) else "PC"
    titles = []
    for name in names:
        cluster = embeddings[name].get("own_cluster")
        titles.append(name if cluster is None else f"<b>{name}</b><br>{100 * cluster:.0f}% by own centre")
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=titles)
    forgotten = {int(c) for c in forget_classes}
    for j, name in enumerate(names):
        e = embeddings[name]
        points, labels = e["points"], e["labels"]
        for highlight in (False, True):
            chosen = [i for i, y in enumerate(labels) if (int(y) in forgotten) == highlight]
            label = "forgotten class" if highlight else "other classes"
            fig.add_scatter(x=[points[i][0] for i in chosen], y=[points[i][1] for i in chosen], mode="markers",
                            name=label, legendgroup=label, showlegend=j == 0, row=1, col=j + 1,
                            marker={"size": 5 if highlight else 4, "color": "#d62728" if highlight else "#b8c2cc",
                                    "opacity": 0.85 if highlight else 0.5},
                            text=[str(classes[labels[i]]) for i in chosen],
                            hovertemplate="%{text}<extra>" + name + "</extra>")
    fig.update_xaxes(title=f"{axis} 1", zeroline=False)
    fig.update_yaxes(zeroline=False)
    for j in range(2, len(names) + 1):  # shared axes: every panel on the first one's scale
        fig.layout[f"xaxis{j}"].matches = "x"
        fig.layout[f"yaxis{j}"].matches = "y"
    fig.update_yaxes(title=f"{axis} 2", row=1, col=1)
    return _style(fig, "Hiding or forgetting? Last hidden layer", height=440,
                  legend="bottom")
