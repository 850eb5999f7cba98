"""The live part of the Unlearn page: alpha/lambda sliders, metric cards and the result views.

It runs inside ``st.fragment``: moving a slider re-dampens the session's scratch model with the
cached importances, evaluates once, and redraws the open view, without touching the rest of the
page, the data or the importances.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import streamlit as st

from ssd_core.dampening import alpha_selecting
from ssd_core.guard import AutoSetting, format_alpha
from ssd_core.metrics import accuracy_interval
from unlearning_lab.text import plain, short_count

from . import links, prefetch, resources, state
from .errors import guard, show_error
from .export_panel import render_export
from .layout import grid, note_beside
from .resources import LiveResult, Prepared
from .state import (
    K_ALPHA,
    K_AUTO,
    K_LAMBDA,
    K_VIEW,
    LAMBDA_MAX,
    LAMBDA_MIN,
    LAMBDA_STEP,
    alpha_options,
    paper_alpha,
)
from .views import VIEWS, register_view

log = logging.getLogger("unlearning_lab.ui")

register_view("export", "Export", ":material/download:", render_export)  # the last built-in tab (ui.views)


def tab_label(view: str) -> str:
    entry = VIEWS.get(view)
    return f"{entry.icon} {entry.label}" if entry is not None else view


K_SCRATCH = "_scratch_model"
K_LIVE = "_live_result"
K_LAST_ALPHA = "_last_alpha"  # (prepared run, alpha) of the last move: which way the user is stepping


def _paper_defaults(method: str, model: str) -> None:
    state.update(alpha=paper_alpha(method, model), lam=1.0, alpha_auto=False)


def _auto_changed(auto_alpha: float | None) -> None:
    """The automatic-alpha toggle: switching it off leaves the slider where auto was."""
    on = bool(st.session_state.get(K_AUTO))
    if on or auto_alpha is None:
        state.update(alpha_auto=on)
    else:
        state.update(alpha_auto=False, alpha=float(f"{auto_alpha:.3g}"))


def _show_alpha(alpha: float) -> None:
    state.update(alpha_auto=False, alpha=float(alpha))


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


NO_CHANGE = "±0.0 pp"


def _delta(before: float | None, after: float | None) -> str | None:
    """The change in percentage points as shown ('+1.5 pp'); '±0.0 pp' when it rounds to nothing."""
    if before is None or after is None:
        return None
    change = round(100 * (after - before), 1)
    return NO_CHANGE if change == 0 else f"{change:+.1f} pp"


def metric_delta(before: float | None, after: float | None, colour: str = "normal") -> dict[str, Any]:
    """``st.metric``'s delta arguments for a change from ``before`` to ``after`` (fractions): the change
    in percentage points, coloured by ``colour`` ("normal": up is good, "inverse": down is good); a
    change that rounds to nothing reads '±0.0 pp' with no arrow and no colour."""
    delta = _delta(before, after)
    still = delta == NO_CHANGE
    return {"delta": delta, "delta_color": "off" if still else colour, "delta_arrow": "off" if still else "auto"}


def card_row(count: int) -> list:
    """Places for ``count`` metric cards: in presentation mode a grid of three per row (large type,
    readable at 1024x768), otherwise one row that wraps when the page is narrow."""
    from .theme import presentation_on

    if presentation_on():
        return grid(count, 3)
    row = st.container(horizontal=True, key="metric_cards", gap="small")
    return [row] * count


def metric_cards(prepared: Prepared, live: LiveResult) -> None:
    b, a = prepared.before, live.evaluation
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
    places = card_row(len(cards) + 1)
    sizes = prepared.live_evaluator.sizes() if prepared.live_sample is not None else {}
    subsets = {"Forget (test)": "forget_test", "Forget (train)": "forget_train", "Retain (test)": "retain_test",
               "Retain (train)": "retain_train"}
    for place, (label, before, after, colour, help_text) in zip(places, cards):
        place.metric(label, _pp(after), **metric_delta(before, after, colour), border=True,
                     help=f"{help_text} Before: {_pp(before)}." + sample_words(prepared, subsets.get(label), after, sizes))
    r = live.report
    places[-1].metric(
        "Dampened", f"{r.total_selected:,}", f"{r.fraction_selected:.2%} of {short_count(r.total_params)}",
        delta_color="off", delta_arrow="off", border=True,  # short: "32.98% of 701,208" wrapped in the card at 1400 px
        help=f"Parameters where I_f > alpha x I_D, out of {r.total_params:,}; each is multiplied by "
             "beta = min(lambda x I_D / I_f, 1).",
    )


def sample_words(prepared: Prepared, subset: str | None, value: float | None, sizes: dict[str, int]) -> str:
    """For a card read on a sample: on how many of the subset's images, and its 95% interval."""
    if subset is None or subset not in sizes:
        return " On a sample of the forget and retain sets (see the note under the cards)." if sizes else ""
    n, whole = sizes[subset], len(getattr(prepared.split, subset))
    if n >= whole:
        return f" On all {whole:,} images."
    interval = accuracy_interval(value, n)
    spread = f" (95% interval {_pp(interval[0])} to {_pp(interval[1])})" if interval else ""
    return f" On a fixed sample of {n:,} of its {whole:,} images{spread}."


def sample_note(prepared: Prepared, live: LiveResult) -> None:
    """Where the cards read a sample: say so in one line, with the all-image numbers when they are known and a
    button that computes them (never silently swapped into the cards)."""
    if prepared.live_sample is None:
        return
    total = len(prepared.split.train) + len(prepared.split.test)
    read = len(prepared.live_evaluator.train) + len(prepared.live_evaluator.test)
    full = resources.peek_full_live(prepared, live.alpha, live.lam)
    c_note, c_button = note_beside([4, 1])
    slot = c_button.empty()
    if full is None and slot.button("All images", key="live_full", icon=":material/functions:", width="stretch",
                                        help=f"Evaluate this setting on all {total:,} images (about "
                                        f"{max(1, round(live.evaluation.seconds * total / max(1, read)))} s here); "
                                        "the cards keep the sample."):
        with c_note, st.spinner(f"Reading all {total:,} images…"):
            full = resources.full_live(prepared, live.alpha, live.lam)[1]
        slot.empty()  # known now: the numbers stand in the line beside it
    text = (f"The cards read a fixed, class-stratified sample: at most {prepared.live_sample:,} images each "
            f"({read:,} of {total:,}, the same every move; each card's (?) gives its 95% interval).")
    if full is not None:
        text += (" All images at this setting: forget test " + _pp(full.forget_test_acc) + ", forget train "
                 + _pp(full.forget_train_acc) + ", retain test " + _pp(full.retain_test_acc) + ", retain train "
                 + _pp(full.retain_train_acc) + ", MIA " + _pp(full.mia) + ".")
    c_note.caption(text)


FEW_DAMPENED = 100  # fewer parameters than this rarely forget anything


def dampening_note(prepared: Prepared, live: LiveResult) -> None:
    """When nothing or almost nothing is dampened, say why in one sentence and what to try."""
    selected = live.report.total_selected
    if selected >= FEW_DAMPENED:
        return
    ratios = resources.importance_ratios(prepared)
    largest = float(ratios.max()) if ratios.numel() else 0.0
    suggestion = alpha_selecting(ratios, FEW_DAMPENED)
    try_text = (f" α = {suggestion:.3g} would dampen {FEW_DAMPENED}; lower α on the slider, or try the batch Fisher "
                "estimator, whose importances are more spread out." if suggestion is not None else
                " Too few parameters matter to the forget set at all: try another estimator or a larger forget set.")
    if selected == 0:
        text = (f"Nothing is dampened: at α = {live.alpha:g} no parameter is more than {live.alpha:g} times as important "
                f"to the forget set as to all the data (the largest ratio I_f / I_D here is {largest:.3g}).")
    else:
        text = (f"Only {selected} parameter{'s are' if selected != 1 else ' is'} dampened at α = {live.alpha:g}, "
                "too few to change what the model predicts.")
    st.info(text + try_text, icon=":material/info:")


def alpha_slider(label: str, key: str, help_text: str, shown: float | None = None) -> float:
    """The alpha slider (a view of the state; on the log ladder, plus the value it shows). ``shown``:
    the alpha automatic mode chose, shown instead of the hand-set one; moving the slider sets alpha
    by hand (which turns automatic alpha off)."""
    current = float(state.current().alpha) if shown is None else float(shown)
    kwargs = state.bind("alpha", key, float)
    st.session_state[key] = current
    return float(st.select_slider(label, options=alpha_options(current), format_func=format_alpha, help=help_text,
                                  **kwargs))


def effective_alpha(prepared: Prepared) -> tuple[float, AutoSetting | None]:
    """The alpha the page dampens with: automatic (and what auto chose), or the hand-set one."""
    current = state.current()
    if not current.alpha_auto:
        return float(current.alpha), None
    with st.spinner("Choosing α (adaptive SSD and the collapse guard)…"):
        setting = resources.auto_alpha(prepared, float(current.lam))
    return float(setting.alpha), setting


def effective_setting(prepared: Prepared) -> tuple[float, float, AutoSetting | None]:
    """The α and λ the Unlearn page dampens with (automatic α and the λ it chose included), and what auto
    chose: what every page calls "the current setting"."""
    alpha, setting = effective_alpha(prepared)
    return alpha, float(setting.lam_used) if setting is not None else float(state.current().lam), setting


def setting_sentence(prepared: Prepared, where: str) -> tuple[float, float, str]:
    """The Unlearn page's α and λ (:func:`effective_setting`) and one sentence saying ``where`` uses them,
    so a page's run of the session's SSD method is the SSD shown on the Unlearn page."""
    alpha, lam, setting = effective_setting(prepared)
    how = "automatic" if setting is not None else "set by hand"
    return alpha, lam, (f"α = {format_alpha(alpha)} ({how}) and λ = {lam:g}: the Unlearn page's setting, so {where} "
                        "shows the same SSD; change them there.")


def auto_toggle(setting: AutoSetting | None) -> bool:
    """The 'Automatic α' toggle (a view of the state)."""
    st.session_state[K_AUTO] = state.current().alpha_auto
    return bool(st.toggle("Automatic α", key=K_AUTO, on_change=_auto_changed,
                          args=(setting.alpha if setting else None,), help=AUTO_HELP))


def lambda_slider(label: str, key: str, help_text: str, setting: AutoSetting | None = None) -> float:
    """The lambda slider (a view of the state). With automatic α it shows the λ auto dampens with: the
    one set here, unless the guard's wider search (a whole class no α forgets at it) chose a smaller one;
    moving it sets the λ auto starts from."""
    kwargs = state.bind("lam", key, float)
    if setting is not None:
        st.session_state[key] = float(setting.lam_used)
    chosen = float(st.slider(label, min_value=LAMBDA_MIN, max_value=LAMBDA_MAX, step=LAMBDA_STEP, help=help_text,
                             **kwargs))
    return float(setting.lam_used) if setting is not None else chosen


AUTO_HELP = ("Automatic α (adaptive SSD): α is set from the forget set's share of the training data, the "
             "(100 − ln(1 + 100·|Df|/|D|))-th percentile of I_f / I_D. If that still takes the retained classes down "
             "(retain accuracy on a training sample falls by more than 3 points), the collapse guard raises α to the "
             "middle of the range that keeps them and still forgets. Switch off to move α yourself.")


def auto_panel(prepared: Prepared, setting: AutoSetting) -> None:
    """What auto chose, and what the paper's alpha would have done on this request."""
    st.caption(plain(setting.sentence(), None))
    cannot = setting.cannot_forget()
    if cannot:
        st.warning(plain(cannot, None), icon=":material/warning:")
    paper = paper_alpha(prepared.setup.method, prepared.setup.model)
    check = resources.guard_check_at(prepared, paper, setting.lam)
    if check.fired:
        c_note, c_button = note_beside([4, 1])
        c_note.info(f"At the paper's α = {paper:g} this request collapses: retain accuracy on a training sample falls "
                    f"{100 * check.drop:.1f} points ({100 * check.retain_before:.1f}% → {100 * check.retain_after:.1f}%). "
                    f"With 10 classes each is about a tenth of the data, so weights every class shares already sit "
                    f"near I_f / I_D = {paper:g}, and α = {paper:g} dampens them too.", icon=":material/info:")
        c_button.button(f"Show α = {paper:g}", key="show_paper_alpha", on_click=_show_alpha, args=(paper,),
                        icon=":material/visibility:", width="stretch")


def guard_panel(prepared: Prepared, live: LiveResult) -> None:
    """With a hand-set alpha: one sentence when the retained classes collapse, and one click to a
    setting that keeps them."""
    check = resources.collapse_check(prepared, live, runner=prefetch.at_low_priority)
    if not check.fired:
        return
    c_note, c_button = note_beside([4, 1])
    c_note.warning(check.sentence() + " The collapse guard can find an α that keeps the retained classes and "
                   "still forgets.", icon=":material/warning:")
    if c_button.button("Keep the rest", key="guard_fix", type="primary", icon=":material/health_and_safety:",
                       width="stretch", help="Bisection on α over the cached importances (on training data only)."):
        with st.spinner("Searching α…"):
            fix = resources.keep_rest_setting(prepared, live.alpha, live.lam)
        st.session_state[K_GUARD_NOTE] = fix.sentence()
        state.update(alpha=fix.alpha, lam=fix.lam, alpha_auto=False)
        st.rerun()


K_GUARD_NOTE = "_guard_note"


@st.fragment
def live_panel(prepared: Prepared) -> None:
    """Sliders + metrics + views; reruns on its own when a control inside it changes."""
    setup = prepared.setup
    setting: AutoSetting | None = None
    alpha = float(state.current().alpha)
    with guard("choosing α automatically"):
        alpha, setting = effective_alpha(prepared)
    c_alpha, c_lam = st.columns(2)
    with c_alpha:
        auto_toggle(setting)
        alpha = alpha_slider(
            "α — selection threshold (log scale)", K_ALPHA,
            "A parameter is dampened when its importance for the forget set exceeds α times its importance "
            "for all data. Higher α: fewer, more specialised parameters. Moving it sets α by hand.",
            shown=alpha if setting is not None else None,
        )
    with c_lam:
        lam = lambda_slider("λ — dampening strength", K_LAMBDA,
                            "Selected parameters are multiplied by min(λ · I_D / I_f, 1): smaller λ dampens harder.",
                            setting)

    links.mirror()  # a slider move reruns only this fragment: keep the shareable URL current
    live: LiveResult | None = None
    with guard("re-dampening the model"):
        live = live_result(prepared, alpha, lam)
    if live is None:
        return
    metric_cards(prepared, live)
    sample_note(prepared, live)
    note = st.session_state.pop(K_GUARD_NOTE, None)
    if note:
        st.success(f"Collapse guard: {plain(note, None)}", icon=":material/health_and_safety:")
    if setting is not None:
        auto_panel(prepared, setting)
    guard_place = st.empty()  # filled after the view: the cards and the view answer first (see below)
    c_note, c_button = note_beside([2, 1])
    c_note.caption(
        f"This move: dampening {1000 * live.seconds['dampening']:.0f} ms, evaluation "
        f"{1000 * live.seconds['evaluation']:.0f} ms (importances reused from cache)."
    )
    if setting is None:  # with automatic α on, its panel's "Show α = …" button is the one way to the paper's α
        c_button.button(
            "Paper's α and λ", key="paper_defaults", on_click=_paper_defaults,
            args=(setup.method, setup.model), icon=":material/restart_alt:", width="stretch",
            help=f"α = {format_alpha(paper_alpha(setup.method, setup.model))} (the paper's value for this model and "
                 "method, set by hand) and λ = 1.",
        )
    dampening_note(prepared, live)

    # A segmented control rather than st.tabs: only the chosen view runs, and its charts stay
    # mounted between slider moves (redrawn in place), which keeps a move well under a second.
    if state.current().view not in VIEWS:
        state.update(view=state.DEFAULT_VIEW)
    view = st.segmented_control("View", list(VIEWS), required=True, format_func=tab_label,
                                label_visibility="collapsed", width="stretch", **state.bind("view", K_VIEW))
    view = view if view in VIEWS else state.DEFAULT_VIEW
    try:
        VIEWS[view].render(prepared, live)
    except Exception as exc:  # noqa: BLE001
        show_error(exc, f"drawing '{VIEWS[view].label}'")
    if setting is None:  # on sampled data the check is its own forward pass: it must not hold the view back
        with guard_place.container(), guard("checking the retained classes"):
            guard_panel(prepared, live)
        # Only now the neighbours: started earlier, their passes took the CPU from this move's own check, and the
        # script (which cannot stop while it waits for that check) held the user's next move back.
        previous = st.session_state.get(K_LAST_ALPHA)
        prefetch.prefetch_neighbours(prepared, alpha, lam, alpha_options(alpha),
                                     previous=previous[1] if previous and previous[0] == prepared.key else None)
        st.session_state[K_LAST_ALPHA] = (prepared.key, alpha)
