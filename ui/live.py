"""The live part of the Unlearn page: alpha/lambda sliders, metric cards and the result views.

It runs inside ``st.fragment``: moving a slider re-dampens the session's scratch model with the
cached importances, evaluates once, and redraws the open view, without touching the rest of the
page, the data or the importances.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from . import links, resources
from .errors import guard, show_error
from .export_panel import render_export
from .resources import LiveResult, Prepared
from .state import (
    ALPHA_VALUES,
    DEFAULT_LAMBDA,
    K_ALPHA,
    K_IMAGE_FORMAT,
    K_LAMBDA,
    K_VIEW,
    LAMBDA_MAX,
    LAMBDA_MIN,
    LAMBDA_STEP,
    format_alpha,
    snap_alpha,
)
from .views import render_accuracy, render_importance, render_saliency, render_signal, render_weights

log = logging.getLogger("unlearning_lab.ui")

VIEWS = {
    "Accuracy shifts": render_accuracy,
    "Importance ratios": render_importance,
    "Dampened weights": render_weights,
    "Saliency maps": render_saliency,
    "Forgetting signal": render_signal,
    "Export": render_export,
}
VIEW_ICONS = {
    "Accuracy shifts": ":material/bar_chart:",
    "Importance ratios": ":material/scatter_plot:",
    "Dampened weights": ":material/tune:",
    "Saliency maps": ":material/visibility:",
    "Forgetting signal": ":material/shield:",
    "Export": ":material/download:",
}
TAB_LABELS = {name: f"{VIEW_ICONS[name]} {name}" for name in VIEWS}
K_SCRATCH = "_scratch_model"
K_LIVE = "_live_result"
K_ALPHA_FOR = "_alpha_defaults_for"


def init_sliders(prepared: Prepared) -> None:
    """Set alpha/lambda to the paper's defaults for a new (model, method), keep them otherwise."""
    pair = (prepared.setup.model, prepared.setup.method)
    if st.session_state.get(K_ALPHA_FOR) != pair or K_ALPHA not in st.session_state:
        st.session_state[K_ALPHA] = snap_alpha(resources.default_alpha(prepared.setup.method, prepared.setup.model))
        st.session_state.setdefault(K_LAMBDA, DEFAULT_LAMBDA)
        st.session_state[K_ALPHA_FOR] = pair
    if st.session_state.get(K_ALPHA) not in ALPHA_VALUES:
        st.session_state[K_ALPHA] = snap_alpha(float(st.session_state.get(K_ALPHA, 10.0)))
    st.session_state.setdefault(K_LAMBDA, DEFAULT_LAMBDA)
    st.session_state.setdefault(K_IMAGE_FORMAT, "png")


def _paper_defaults(method: str, model: str) -> None:
    st.session_state[K_ALPHA] = snap_alpha(resources.default_alpha(method, model))
    st.session_state[K_LAMBDA] = DEFAULT_LAMBDA


def live_result(prepared: Prepared, alpha: float, lam: float) -> LiveResult:
    """This session's result for (alpha, lambda), recomputed only when one of them changed."""
    memo = st.session_state.get(K_LIVE)
    if memo is not None and memo[0] == (prepared.key, alpha, lam):
        return memo[1]
    scratch = st.session_state.get(K_SCRATCH)
    if scratch is None or scratch[0] != prepared.key:
        scratch = (prepared.key, resources.scratch_model(prepared))
        st.session_state[K_SCRATCH] = scratch
    st.session_state.pop(K_LIVE, None)  # the scratch model is about to change under any old result
    start = time.perf_counter()
    live = resources.compute_live(prepared, alpha, lam, scratch=scratch[1])
    live.seconds["total"] = time.perf_counter() - start
    st.session_state[K_LIVE] = ((prepared.key, alpha, lam), live)
    return live


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _delta(before: float | None, after: float | None) -> str | None:
    if before is None or after is None:
        return None
    return f"{100 * (after - before):+.1f} pp"


def metric_cards(prepared: Prepared, live: LiveResult) -> None:
    b, a = prepared.before_eval, live.evaluation
    cards = [
        ("Forget (test)", b.forget_test_acc, a.forget_test_acc, "inverse",
         "Accuracy on test images of what was forgotten; should drop."),
        ("Forget (train)", b.forget_train_acc, a.forget_train_acc, "inverse",
         "Accuracy on the forget set itself; should drop."),
        ("Retain (test)", b.retain_test_acc, a.retain_test_acc, "normal",
         "Accuracy on test images of everything else; should stay."),
        ("Retain (train)", b.retain_train_acc, a.retain_train_acc, "normal",
         "Accuracy on the training images that were kept; should stay."),
        ("MIA", b.mia, a.mia, "inverse",
         "Share of forget samples a membership-inference attack calls members; lower is better forgetting."),
    ]
    cols = st.columns(len(cards) + 1)
    for col, (label, before, after, colour, help_text) in zip(cols, cards):
        col.metric(label, _pp(after), _delta(before, after), delta_color=colour, border=True,
                   help=f"{help_text} Before: {_pp(before)}.")
    r = live.report
    cols[-1].metric(
        "Dampened", f"{r.total_selected:,}", f"{r.fraction_selected:.2%} of {r.total_params:,}",
        delta_color="off", delta_arrow="off", border=True,
        help="Parameters where I_f > alpha x I_D; each is multiplied by beta = min(lambda x I_D / I_f, 1).",
    )


@st.fragment
def live_panel(prepared: Prepared) -> None:
    """Sliders + metrics + views; reruns on its own when a control inside it changes."""
    setup = prepared.setup
    c_alpha, c_lam, c_button = st.columns([5, 4, 2], vertical_alignment="bottom")
    with c_alpha:
        alpha = st.select_slider(
            "α — selection threshold (log scale)", options=list(ALPHA_VALUES), key=K_ALPHA, persist_state="session",
            format_func=format_alpha,
            help="A parameter is dampened when its importance for the forget set exceeds α times its importance "
            "for all data. Higher α: fewer, more specialised parameters.",
        )
    with c_lam:
        lam = st.slider(
            "λ — dampening strength", min_value=LAMBDA_MIN, max_value=LAMBDA_MAX, step=LAMBDA_STEP, key=K_LAMBDA, persist_state="session",
            help="Selected parameters are multiplied by min(λ · I_D / I_f, 1): smaller λ dampens harder.",
        )
    with c_button:
        paper_alpha = snap_alpha(resources.default_alpha(setup.method, setup.model))
        st.button(
            "Paper defaults", key="paper_defaults", on_click=_paper_defaults,
            args=(setup.method, setup.model), icon=":material/restart_alt:", width="stretch",
            help=f"α = {paper_alpha:g} (the paper's value for this model and method) and λ = 1.",
        )

    links.mirror()  # a slider move reruns only this fragment: keep the shareable URL current
    live: LiveResult | None = None
    with guard("re-dampening the model"):
        live = live_result(prepared, float(alpha), float(lam))
    if live is None:
        return
    metric_cards(prepared, live)
    st.caption(
        f"This move: dampening {1000 * live.seconds['dampening']:.0f} ms, evaluation "
        f"{1000 * live.seconds['evaluation']:.0f} ms (importances reused from cache)."
    )

    # A segmented control rather than st.tabs: only the chosen view runs, and its charts stay
    # mounted between slider moves (redrawn in place), which keeps a move well under a second.
    if st.session_state.get(K_VIEW) not in VIEWS:
        st.session_state[K_VIEW] = next(iter(VIEWS))
    view = st.segmented_control("View", list(VIEWS), key=K_VIEW, required=True, format_func=TAB_LABELS.get,
                                label_visibility="collapsed", width="stretch")
    try:
        VIEWS[view or next(iter(VIEWS))](prepared, live)
    except Exception as exc:  # noqa: BLE001
        show_error(exc, f"drawing '{view}'")
