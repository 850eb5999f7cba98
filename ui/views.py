"""The Unlearn page's figures and views, each a registration.

A **figure** (:func:`register_figure`) is an id (file names, the Lesson's steps), a title, a
plain-language explanation and a builder ``build(prepared, live, options)``; the page, the Lesson and
the export panel all build from :data:`FIGURES`, so an exported figure is the one on screen. A
**view** (:func:`register_view`) is one tab of the page: an id (the URL's ``view=``), a label, an
icon and either a renderer or the ids of the figures it shows. A new figure on the page is two calls.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

from ssd_core.guard import format_alpha
from ssd_core.metrics import logits_of
from unlearning_lab import figures, saliency
from unlearning_lab.export import modebar_config

from . import resources
from .errors import guard
from .resources import LiveResult, Prepared
from .state import K_IMAGE_FORMAT, keep, kept
from .store import store_for

# ---------------------------------------------------------------------------------------------
# Plain-language explanations (also used as captions in the HTML export)

_TITLES = {
    "accuracy-summary": "Accuracy and MIA, before and after",
    "per-class-accuracy": "Per-class test accuracy",
    "confusion-matrices": "Confusion matrices",
    "importance-ratios": "Importance ratio per layer",
    "selected-per-layer": "Parameters selected per layer",
    "importance-scatter": "I_D vs I_f",
    "ratio-histogram": "Importance ratios of one layer",
    "weights": "Weights before vs after",
    "filter-dampening": "Dampening per filter",
    "saliency": "Saliency maps",
    "forgetting-signal": "Forgetting signal",
}

_EXPLANATIONS = {
    "accuracy-summary": (
        "Each pair of bars is one number before (grey) and after (orange) unlearning. Good forgetting "
        "drives the forget bars down while the retain bars stay where they were. MIA is the share of "
        "forget samples a membership-inference attack still calls 'seen in training'; after good "
        "unlearning it should fall towards what a model that never saw them would give."
    ),
    "per-class-accuracy": (
        "Test accuracy of every class before and after. The forgotten class is marked in red: its "
        "accuracy should collapse, while the other classes keep theirs. Other classes dropping too "
        "means alpha is too low (too many shared parameters were dampened)."
    ),
    "confusion-matrices": (
        "Rows are the true class, columns the predicted class, each row in % of that class's test "
        "images. After unlearning, the forgotten class's row spreads to other columns; the right "
        "panel shows the change (red = more often, blue = less often)."
    ),
    "importance-ratios": (
        "For every parameter, SSD compares how important it is for the forget set (I_f) with how "
        "important it is for all training data (I_D). Each box shows how log10(I_f / I_D) is spread "
        "within one layer (middle line = median, whiskers = 1st and 99th percentile). Parameters above "
        "the dashed line log10(alpha) are specialised for the forget set and get dampened; raising "
        "alpha raises the line and selects fewer of them."
    ),
    "selected-per-layer": (
        "The share of each layer's parameters that the current alpha selects for dampening "
        "(selected count / layer size on top of each bar). It shows where in the network the "
        "knowledge of the forget set sits."
    ),
    "importance-scatter": (
        "Each dot is one parameter (a random sample): its importance for all data (x) against its "
        "importance for the forget set (y), both on log scales. The dashed line is I_f = alpha x I_D; "
        "dots above it (orange) are dampened. Moving alpha slides the line up or down."
    ),
    "ratio-histogram": (
        "The distribution of log10(I_f / I_D) within the picked layer. Orange bins lie above the "
        "threshold log10(alpha) and are dampened. Parameters with I_D = 0 but I_f > 0 are always "
        "dampened (to zero); those with I_f = 0 never are."
    ),
    "weights": (
        "Every dot is one weight of the picked layer: its value before (x) and after (y) unlearning. "
        "Unchanged weights lie on the diagonal; dampened ones are pulled towards zero by the factor "
        "beta = min(lambda x I_D / I_f, 1), so a smaller lambda pulls them further."
    ),
    "filter-dampening": (
        "For a convolutional layer: each row is one output filter, each column one input channel, and "
        "the colour says how much of that kernel's size (L2 norm) dampening removed. The bar on the "
        "right sums this up per filter. Filters that light up were specialised for the forget set."
    ),
    "saliency": (
        "Which pixels drive the model's score for a class (the true class, or the predicted one if "
        "chosen), before and after unlearning, on a few forget and retain test images. Before and "
        "after share one colour scale per row, so a fading map means the model no longer finds "
        "evidence for that class; the last column is after minus before (red = more, blue = less). "
        "Retain images should look alike before and after."
    ),
    "forgetting-signal": (
        "A membership-inference attack guesses whether an image was in the training set from how the "
        "model reacts to it, e.g. its loss or the entropy of its prediction: training images tend to "
        "get a low loss. Before unlearning the forget set looks like the retain set (seen in training); "
        "after good unlearning it should look like the test set (never seen)."
    ),
}


@dataclass(frozen=True)
class ViewOptions:
    ratio_layer: str
    weight_layer: str
    saliency_method: str = "saliency"
    saliency_target: str = "true"
    saliency_per_group: int = 3
    signal_quantity: str = "loss"


def file_stem(prepared: Prepared, live: LiveResult) -> str:
    return f"{prepared.setup.slug()}-a{live.alpha:g}-l{live.lam:g}"


def show_figure(fig: Any, name: str, stem: str, explain: bool = True) -> None:
    """A chart whose camera button saves '<stem>-<name>.<png|svg>' at high resolution."""
    from .theme import themed  # presentation mode (ui.theme) applies to every figure

    fmt = kept(K_IMAGE_FORMAT, "png")
    st.plotly_chart(themed(fig), key=f"chart-{name}", theme=None, config=modebar_config(f"{stem}-{name}", fmt))
    if explain and name in FIGURES:
        with st.expander("What does this show?"):
            st.write(FIGURES[name].explanation)


def layer_label(prepared: Prepared, name: str) -> str:
    shape = "×".join(str(s) for s in prepared.importances.full[name].shape)
    return f"{figures.short_layer_name(name)}  ({shape})"


# ---------------------------------------------------------------------------------------------
# Figure builders (shared with export)


def settings_note(live: LiveResult) -> str:
    return f"α = {format_alpha(live.alpha)}, λ = {live.lam:g}"


def fig_accuracy_summary(p: Prepared, live: LiveResult) -> Any:
    return figures.accuracy_summary_figure(p.before.summary(), live.evaluation.summary(), settings_note(live))


def fig_per_class(p: Prepared, live: LiveResult) -> Any:
    return figures.per_class_accuracy_figure(
        p.dataset.classes, p.before.per_class_acc, live.evaluation.per_class_acc, p.split.forget_classes,
        settings_note(live),
    )


def fig_confusion(p: Prepared, live: LiveResult) -> Any:
    return figures.confusion_matrices_figure(
        p.dataset.classes, p.before.confusion, live.evaluation.confusion, settings_note(live)
    )


def fig_importance_ratios(p: Prepared, live: LiveResult) -> Any:
    return figures.importance_ratio_figure(p.ratio_summaries, live.alpha)


def fig_selected(p: Prepared, live: LiveResult) -> Any:
    layers = live.report.layers
    return figures.selected_fraction_figure(
        [la.name for la in layers], [la.fraction_selected for la in layers], [la.selected for la in layers], [la.size for la in layers]
    )


def fig_scatter(p: Prepared, live: LiveResult) -> Any:
    return figures.importance_scatter_figure(p.importance_sample, live.alpha)


def fig_ratio_histogram(p: Prepared, live: LiveResult, layer: str) -> Any:
    summary = next((s for s in p.ratio_summaries if s.name == layer), p.ratio_summaries[0])
    return figures.ratio_histogram_figure(summary, live.alpha)


def _weights(p: Prepared, live: LiveResult, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    before = dict(p.model.named_parameters())[layer].detach()
    after = dict(live.model.named_parameters())[layer].detach()
    return before, after


def fig_weights(p: Prepared, live: LiveResult, layer: str) -> Any:
    before, after = _weights(p, live, layer)
    return figures.weights_figure(before, after, layer, seed=p.setup.seed)


def fig_filters(p: Prepared, live: LiveResult, layer: str) -> Any | None:
    before, after = _weights(p, live, layer)
    if before.dim() != 4:
        return None
    return figures.filter_dampening_figure(before, after, layer)


def saliency_comparison(p: Prepared, live: LiveResult, options: ViewOptions) -> saliency.SaliencyComparison:
    examples = saliency.select_examples(p.split, options.saliency_per_group, options.saliency_per_group, seed=p.setup.seed)
    key = (p.key, options.saliency_method, options.saliency_target, options.saliency_per_group)

    def before_maps() -> tuple[np.ndarray, list[int], list[int]]:
        private = copy.deepcopy(p.model)  # captum hooks must not touch the shared model
        return saliency.model_maps(private, examples, options.saliency_method, options.saliency_target,
                                   p.device, seed=p.setup.seed)

    b_maps, b_pred, b_targets = resources.resource_store().get("saliency_before", key, before_maps)
    a_maps, a_pred, a_targets = saliency.model_maps(live.model, examples, options.saliency_method,
                                                    options.saliency_target, p.device, seed=p.setup.seed)
    return saliency.SaliencyComparison(options.saliency_method, options.saliency_target, examples, b_maps, a_maps,
                                       b_pred, a_pred, b_targets, a_targets)


def fig_saliency(p: Prepared, live: LiveResult, options: ViewOptions) -> Any:
    comparison = saliency_comparison(p, live, options)
    return figures.saliency_figure(
        comparison.examples.images.numpy(), comparison.before_maps, comparison.after_maps,
        comparison.row_labels(p.dataset.classes), saliency.METHOD_LABELS[comparison.method],
    )


def signal_groups(p: Prepared, live: LiveResult, quantity: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The forgetting signal before and after, image by image (the same sample for both)."""
    before = figures.signal_values(p.before_outputs, p.split, quantity, seed=p.setup.seed)
    after = figures.signal_values(_signal_logits(p, live), p.split, quantity, seed=p.setup.seed)
    return {group: (before[group], after[group]) for group in before}


def _signal_logits(p: Prepared, live: LiveResult) -> Any:
    """The move's logits on the images the signal reads (``figures.signal_sample``): its own when it read every
    image; where the cards read a sample, a pass over the signal's images only (at most 2,000 a group: 6,000 on
    Fashion-MNIST, not 70,000), kept like a move's, so a slider move on this view stays a move."""
    if p.live_sample is None:
        return live.outputs

    def build() -> dict[str, torch.Tensor]:
        model, _ = resources.engine(p).at(live.alpha, live.lam)
        data = {"forget": p.dataset.train(), "retain": p.dataset.train(), "test": p.dataset.test()}
        return {group: logits_of(model, data[group].select(torch.from_numpy(idx)), p.device)
                for group, idx in figures.signal_sample(p.split, seed=p.setup.seed).items()}

    return store_for(p.setup).get("live_signal", (p.key, float(live.alpha), float(live.lam)), build)


def fig_signal(p: Prepared, live: LiveResult, quantity: str) -> Any:
    """The histograms, titled with the MIA the cards show (on sampled data, the cards' sample)."""
    return figures.forgetting_signal_figure(signal_groups(p, live, quantity), quantity, (p.before.mia, live.evaluation.mia))


@dataclass(frozen=True)
class Figure:
    """One registered figure: ``build(prepared, live, options)`` returns a plotly figure, or None where
    it does not apply (the filter heatmap of a layer that is not a convolution)."""

    id: str
    title: str
    explanation: str
    build: Callable[[Prepared, LiveResult, ViewOptions], Any | None]


FIGURES: dict[str, Figure] = {}


def register_figure(id: str, title: str, explanation: str,
                    build: Callable[[Prepared, LiveResult, ViewOptions], Any | None]) -> Figure:
    """Add a figure to the page's registry (exported with the others, usable by a view and the Lesson)."""
    if not id or not id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"A figure id must be letters, digits, '-' and '_'; got {id!r}.")
    FIGURES[id] = Figure(id, title, explanation, build)
    return FIGURES[id]


_BUILDERS: dict[str, Callable[[Prepared, LiveResult, ViewOptions], Any | None]] = {
    "accuracy-summary": lambda p, live, o: fig_accuracy_summary(p, live),
    "per-class-accuracy": lambda p, live, o: fig_per_class(p, live),
    "confusion-matrices": lambda p, live, o: fig_confusion(p, live),
    "importance-ratios": lambda p, live, o: fig_importance_ratios(p, live),
    "selected-per-layer": lambda p, live, o: fig_selected(p, live),
    "importance-scatter": lambda p, live, o: fig_scatter(p, live),
    "ratio-histogram": lambda p, live, o: fig_ratio_histogram(p, live, o.ratio_layer),
    "weights": lambda p, live, o: fig_weights(p, live, o.weight_layer),
    "filter-dampening": lambda p, live, o: fig_filters(p, live, o.weight_layer),
    "saliency": fig_saliency,
    "forgetting-signal": lambda p, live, o: fig_signal(p, live, o.signal_quantity),
}
for _id, _build in _BUILDERS.items():
    register_figure(_id, _TITLES[_id], _EXPLANATIONS[_id], _build)


def all_figures(p: Prepared, live: LiveResult, options: ViewOptions,
                progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Every registered figure for the current settings (for export)."""
    out: dict[str, Any] = {}
    registered = list(FIGURES.values())
    for i, entry in enumerate(registered):
        if progress is not None:
            progress(i / len(registered), f"building {entry.id}")
        fig = entry.build(p, live, options)
        if fig is not None:
            out[entry.id] = fig
    return out


# ---------------------------------------------------------------------------------------------
# Views (Streamlit)


def pair() -> tuple[Any, Any]:
    """Two figures side by side, or one above the other in presentation mode (projector type needs the width)."""
    from .theme import presentation_on

    if presentation_on():
        return st.container(), st.container()
    left, right = st.columns(2)
    return left, right


def _layer_picker(p: Prepared, key: str, label: str) -> str:
    names = p.param_names
    return st.selectbox(label, names, format_func=lambda n: layer_label(p, n),
                        **keep(key, p.default_layer(), valid=names))


def options_from_state(p: Prepared) -> ViewOptions:
    """The session's view options (kept across pages; defaults where a kept one does not fit this model)."""
    names = p.param_names
    default = p.default_layer()
    ratio = kept("opt_ratio_layer")
    weight = kept("opt_weight_layer")
    methods = saliency.available_methods(p.model)
    method = kept("opt_saliency_method")
    return ViewOptions(
        ratio_layer=ratio if ratio in names else default,
        weight_layer=weight if weight in names else default,
        saliency_method=method if method in methods else methods[0],
        saliency_target=kept("opt_saliency_target", "true"),
        saliency_per_group=int(kept("opt_saliency_n", 3)),
        signal_quantity=kept("opt_signal_quantity", "loss"),
    )


def render_accuracy(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    left, right = pair()
    with left, guard("drawing the accuracy summary"):
        show_figure(fig_accuracy_summary(p, live), "accuracy-summary", stem)
    with right, guard("drawing per-class accuracy"):
        show_figure(fig_per_class(p, live), "per-class-accuracy", stem)
    with guard("drawing the confusion matrices"):
        show_figure(fig_confusion(p, live), "confusion-matrices", stem)


def render_importance(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    left, right = pair()
    with left, guard("drawing importance ratios"):
        show_figure(fig_importance_ratios(p, live), "importance-ratios", stem)
    with right, guard("drawing the selected fractions"):
        show_figure(fig_selected(p, live), "selected-per-layer", stem)
    left, right = pair()
    with left, guard("drawing the importance scatter"):
        show_figure(fig_scatter(p, live), "importance-scatter", stem)
    with right, guard("drawing the layer histogram"):
        layer = _layer_picker(p, "opt_ratio_layer", "Layer for the histogram")
        show_figure(fig_ratio_histogram(p, live, layer), "ratio-histogram", stem)


def render_weights(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    layer = _layer_picker(p, "opt_weight_layer", "Layer")
    report = next((la for la in live.report.layers if la.name == layer), None)
    if report is not None:
        st.caption(
            f"{report.selected:,} of {report.size:,} entries dampened ({report.fraction_selected:.1%}); "
            f"mean factor beta over them {report.mean_factor:.3f}, smallest {report.min_factor:.3f}."
        )
    filters = None
    with guard("drawing the filter heatmap"):
        filters = fig_filters(p, live, layer)
    if filters is not None:
        left, right = pair()
        with left, guard("drawing the weights"):
            show_figure(fig_weights(p, live, layer), "weights", stem)
        with right:
            show_figure(filters, "filter-dampening", stem)
    else:
        with guard("drawing the weights"):
            show_figure(fig_weights(p, live, layer), "weights", stem)
        st.caption("The per-filter heatmap is shown for convolutional weight tensors (pick one above).")


def render_saliency(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    methods = saliency.available_methods(p.model)
    st.segmented_control("Attribution method", methods, format_func=lambda m: saliency.METHOD_LABELS.get(m, m), required=True,
                         **keep("opt_saliency_method", methods[0], valid=methods))
    c1, c2 = st.columns([3, 2])
    with c1:
        st.radio("Explain the score of", ["true", "predicted"], horizontal=True,
                 format_func={"true": "true class", "predicted": "predicted class"}.get,
                 **keep("opt_saliency_target", "true", valid=["true", "predicted"]))
    with c2:
        st.slider("Images per group", 1, 6, **keep("opt_saliency_n", 3, valid=list(range(1, 7))))
    if "gradcam" not in methods:
        st.caption("Grad-CAM needs a convolutional layer; this model has none.")
    with guard("computing saliency maps"):
        show_figure(fig_saliency(p, live, options_from_state(p)), "saliency", stem)


def render_signal(p: Prepared, live: LiveResult) -> None:
    stem = file_stem(p, live)
    quantity = st.radio("Per-sample quantity", ["loss", "entropy"], horizontal=True,
                        help="The SSD paper's MIA uses the entropy of the softmax output.",
                        **keep("opt_signal_quantity", "loss", valid=["loss", "entropy"]))
    with guard("drawing the forgetting signal"):
        show_figure(fig_signal(p, live, quantity or "loss"), "forgetting-signal", stem)
    if p.live_sample is not None:
        st.caption(f"Each group: at most {figures.SIGNAL_PER_GROUP:,} images, the same before and after. "
                   "The MIA in the titles is the MIA card's, on the cards' sample.")


# ---------------------------------------------------------------------------------------------
# The page's tabs


@dataclass(frozen=True)
class View:
    """One tab of the Unlearn page: ``render(prepared, live)`` draws it."""

    id: str
    label: str
    icon: str
    render: Callable[[Prepared, LiveResult], None]


VIEWS: dict[str, View] = {}


def register_view(id: str, label: str, icon: str, render: Callable[[Prepared, LiveResult], None] | None = None,
                  figures: tuple[str, ...] = ()) -> View:
    """Add a tab to the Unlearn page (after those registered before it). Give ``render``, or the ids of
    registered figures to show two by two with their explanations."""
    if not id.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"A view id must be letters, digits, '-' and '_'; got {id!r}.")
    if render is None:
        unknown = [f for f in figures if f not in FIGURES]
        if not figures or unknown:
            raise ValueError(f"View '{id}' needs a render function or registered figure ids (unknown: {unknown}).")
        render = _figure_grid(figures)
    VIEWS[id] = View(id, label, icon, render)
    return VIEWS[id]


def _figure_grid(ids: tuple[str, ...]) -> Callable[[Prepared, LiveResult], None]:
    def render(p: Prepared, live: LiveResult) -> None:
        stem, options = file_stem(p, live), options_from_state(p)
        columns = list(pair()) if len(ids) > 1 else [st.container()]
        for i, figure_id in enumerate(ids):
            entry = FIGURES[figure_id]
            with columns[i % len(columns)], guard(f"drawing {entry.title}"):
                fig = entry.build(p, live, options)
                if fig is not None:
                    show_figure(fig, figure_id, stem)

    return render


register_view("accuracy", "Accuracy shifts", ":material/bar_chart:", render_accuracy)
register_view("importance", "Importance ratios", ":material/scatter_plot:", render_importance)
register_view("weights", "Dampened weights", ":material/tune:", render_weights)
register_view("saliency", "Saliency maps", ":material/visibility:", render_saliency)
register_view("signal", "Forgetting signal", ":material/shield:", render_signal)
