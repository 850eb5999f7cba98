"""Landscape: forget accuracy, retain accuracy and MIA over a grid of alpha and lambda, the
trade-off frontier, an alpha suggestion and a retrained reference; every "Use" sets the session's
alpha and lambda (the sliders on every page follow) and says so, with a link to the Unlearn page."""

import streamlit as st

from ui import landscape, layout, live, sidebar
from ui import state as lab_state
from ui.errors import guard
from ui.landscape import (
    LAMBDA_LADDER,
    GridForm,
    alpha_sweep,
    alpha_sweep_images,
    recommend_alpha,
    sweep_figure,
    sweep_table,
)
from ui.presets import render_picker
from ui.state import ALPHA_VALUES, K_LAMBDA, paper_alpha
from ui.theme import show_chart

K_SUGGESTION = "_landscape_suggestion"
K_RETRAINED = "_landscape_retrained"

st.title("Landscape: α and λ together")
st.markdown(
    "SSD has two knobs. **α** decides *which* parameters are dampened (those with $I_f > \\alpha I_D$), **λ** "
    "decides *how hard* ($\\beta = \\min(\\lambda I_D / I_f, 1)$). This page dampens the model at every point of "
    "an α × λ grid, reusing the cached importances, and shows what is forgotten, what is kept and what a "
    "membership-inference attack still sees. Click a point on the frontier to use that setting."
)
render_picker("landscape")

setup = sidebar.run_setup()


def current_setting(prepared) -> tuple[float, float]:
    """The α and λ the Unlearn page dampens with (automatic α included): the figures' "current" marker."""
    alpha, lam, _ = live.effective_setting(prepared)
    return alpha, lam


def applied_message() -> None:
    """After a "Use" click: one line saying what was set, and the way to the live view."""
    applied = st.session_state.pop(landscape.K_APPLIED_SETTING, None)
    if applied:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.success(f"Now using α = {applied[0]:g}, λ = {applied[1]:g} on every page.", icon=":material/check:")
        c2.page_link("app_pages/unlearn.py", label="Open Unlearn", icon=":material/auto_fix_high:")


def _commit_grid() -> None:
    lab_state.commit_kept(*GridForm.keys())


def grid_controls(prepared) -> tuple[list[float], list[float], int | None, float, bool]:
    n_train = len(prepared.dataset.train_y)
    bound_default = landscape.eval_bound_default(prepared)
    GridForm.reset_bound_for(prepared.setup.dataset, bound_default)
    keep = GridForm.widget_kwargs(bound_default)
    with st.form("landscape_form", border=True):
        c1, c2, c3 = st.columns(3)  # α in one row, λ in the next: whole labels even in presentation mode
        c4, c5, c6 = st.columns(3)
        c1.select_slider("α from", options=list(ALPHA_VALUES), format_func=lambda a: f"{a:g}", **keep["alpha_lo"])
        c2.select_slider("α to", options=list(ALPHA_VALUES), format_func=lambda a: f"{a:g}", **keep["alpha_hi"])
        c3.slider("α values", 2, len(ALPHA_VALUES), help="How many α, spread evenly on a log scale.", **keep["n_alpha"])
        c4.select_slider("λ from", options=LAMBDA_LADDER, format_func=lambda v: f"{v:g}", **keep["lam_lo"])
        c5.select_slider("λ to", options=LAMBDA_LADDER, format_func=lambda v: f"{v:g}", **keep["lam_hi"])
        c6.slider("λ values", 1, 12, help="How many λ, spread evenly on a log scale.", **keep["n_lam"])
        c7, c8 = st.columns(2, vertical_alignment="bottom")
        c7.number_input("Evaluate at most this many images per subset (0 = all)", min_value=0, max_value=100_000,
                        step=50, **keep["eval_bound"],
                        help=f"{prepared.setup.dataset} has {n_train:,} training images. A subset (forget/retain × "
                        "train/test) bigger than this is evaluated on a fixed, seeded sample so the grid stays fast: on "
                        "the digits only retain-train (the members MIA learns from) is sampled; on data bigger than "
                        f"{landscape.BIG_DATASET:,} images every subset"
                        + ("" if prepared.live_sample is None else
                           f"; at {prepared.live_sample} (the default) on the same class-stratified images the Unlearn "
                           "page's cards read, so a cell shows the cards' numbers for its setting")
                        + ". 0 evaluates everything (numbers then equal single runs).")
        c8.number_input("Time budget (seconds)", min_value=1, max_value=3600, step=10, **keep["budget"],
                        help="The sweep stops when this is spent; finished points are kept.")
        submitted = st.form_submit_button("Compute landscape", type="primary", icon=":material/grid_on:",
                                          width="content", on_click=_commit_grid)  # its own row: never squeezed
    form = GridForm.kept(bound_default)
    alphas, lams, bound = form.grid(paper_alpha(prepared.setup.method, prepared.setup.model))
    return alphas, lams, bound, float(form.budget), submitted


def _show_progress(bar, fraction: float, message: str) -> None:
    bar.progress(min(max(fraction, 0.0), 1.0), text=message)


def compute(prepared, alphas, lams, bound, budget) -> None:
    key = (prepared.key, tuple(alphas), tuple(lams), bound)
    if (kept := landscape.finished_landscape(prepared, key)) is not None:  # this grid was swept on this server
        st.session_state[landscape.K_LANDSCAPE] = {"key": key, "result": kept[0], "hits": kept[1], "kept": True}
        return
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    bar = c1.progress(0.0, text=f"sweeping {len(alphas)} × {len(lams)} settings")
    stop = c2.empty()
    stop.button("Stop", key="ls_stop", icon=":material/stop_circle:", width="stretch",
                help="Stops the sweep; finished columns are kept.")

    preview = st.empty()  # the forget heatmap fills in one α column at a time while the sweep runs

    def keep(partial) -> None:  # finished columns survive a Stop (which interrupts the script)
        st.session_state[landscape.K_LANDSCAPE] = {"key": key, "result": partial, "hits": None}
        if not partial.complete:
            with preview.container():
                show_chart(landscape.preview_figure(partial), key=f"landscape-preview-{len(partial.points)}")
                st.caption("The α columns finished so far; the other heatmaps, the Pareto rings and the frontier follow "
                           "when the sweep ends.")

    result, hits = landscape.run_landscape(
        prepared, alphas, lams, max_eval_per_subset=bound, time_budget_s=budget,
        progress=lambda f, m: _show_progress(bar, f, m), on_column=keep,
    )
    st.session_state[landscape.K_LANDSCAPE] = {"key": key, "result": result, "hits": hits}
    landscape.keep_landscape(prepared, key, result, hits)
    bar.empty()
    stop.empty()
    preview.empty()


def show_landscape(prepared, stored) -> None:
    result = stored["result"]
    current = current_setting(prepared)
    total = len(result.alphas) * len(result.lams)
    sizes = result.eval_sizes
    evaluated = ("all images" if stored["key"][3] is None else
                 f"at most {stored['key'][3]} images per subset ("
                 + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sizes.items()) + ")")
    reused = "" if not stored.get("hits") else f", {stored['hits']} reused an identical model's numbers"
    kept = " (kept from this grid's earlier sweep on this server)" if stored.get("kept") else ""
    st.caption(f"{len(result.points)} of {total} settings in {result.seconds:.1f} s{kept}{reused} · evaluated on "
               f"{evaluated}.")
    if not result.complete:
        st.warning(f"The sweep stopped after {len(result.points)} of {total} settings (time budget or Stop); "
                   "the missing cells are blank.", icon=":material/timer_off:")
    if not result.points:
        return
    figs = landscape.heatmap_figures(result, current)  # show_chart applies the session's theme
    columns = st.columns(3)
    for column, (metric, fig) in zip(columns, figs.items()):
        with column:
            show_chart(fig, key=f"landscape-{metric}")
    retrained = st.session_state.get(K_RETRAINED)
    retrained = retrained[1] if retrained and retrained[0] == (prepared.key, stored["key"][3]) else None

    def on_select() -> None:
        selection = st.session_state.get("landscape_frontier")
        point = landscape.pick_from_selection(selection.get("selection") if selection else None, result)
        if point is not None:
            landscape.apply_setting(point.alpha, point.lam)

    show_chart(landscape.frontier_figure(result, prepared, current, retrained), key="landscape_frontier",
               on_select=on_select, selection_mode=("points", "box"))
    with st.expander("How to read the landscape"):
        st.write(
            "Heatmaps: each cell is one (α, λ) (rows λ, columns α, both log-spaced). One colour rule for all three: "
            "yellow is better, dark is worse, and the top of every colour bar is the best value (low forget accuracy, "
            "high retain accuracy, low MIA). Rings mark Pareto settings. Frontier: every setting as (retain, forget) "
            "accuracy; the Pareto settings (orange) are those no other setting beats on both. The star is the "
            "original model, the diamond a model retrained without the forget set (when computed): the closer a "
            "setting lies to the diamond, the more it behaves like retraining. Click a point, or drag a box around "
            "several (the best of them is taken), to use that setting."
        )

    front = sorted(result.pareto_points(),
                   key=lambda p: (-(landscape.retain_value(p) or 0.0), landscape.forget_value(p) or 0.0, -p.alpha))
    if front:
        c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
        options = [(p.alpha, p.lam) for p in front]
        by = {(p.alpha, p.lam): p for p in front}
        pick = c1.selectbox(
            "Pareto settings", options, **lab_state.keep(landscape.K_PICK, options[0], valid=options),
            format_func=lambda o: (f"α {o[0]:g}, λ {o[1]:g}: forget {100 * (landscape.forget_value(by[o]) or 0):.1f}%, "
                                   f"retain {100 * (landscape.retain_value(by[o]) or 0):.1f}%, MIA "
                                   + ("n/a" if by[o].mia is None else f"{100 * by[o].mia:.1f}%")),
        )
        c2.button("Use this setting", key="ls_use_pareto", on_click=landscape.apply_setting,
                  args=(pick[0], pick[1]), icon=":material/check:", width="stretch")
    with st.expander(f"All {len(result.points)} settings as a table"):
        st.dataframe(landscape.point_table(result.points), hide_index=True, width="stretch")


def suggestion_panel(prepared, bound) -> None:
    lam = float(lab_state.current().lam)
    st.markdown("##### Suggest α")
    st.number_input("Target forget accuracy (%)", min_value=0.0, max_value=100.0, step=1.0,
                    **lab_state.keep(landscape.K_TARGET, 5.0),
                    help="The gentlest α (fewest parameters dampened) whose forget accuracy is at or below this, at the "
                    f"current λ = {lam:g}, found by bisection on log α.")
    if st.button("Suggest α", key="ls_suggest", icon=":material/lightbulb:", width="content"):  # below: the panel is half the page
        with st.spinner("bisecting α…"):
            st.session_state[K_SUGGESTION] = ((prepared.key, bound, lam), landscape.suggest(
                prepared, float(lab_state.kept(landscape.K_TARGET, 5.0)) / 100.0, lam, bound))
    stored = st.session_state.get(K_SUGGESTION)
    if stored and stored[0] == (prepared.key, bound, lam):
        s = stored[1]
        if s.point is None:
            st.warning(f"Even α = {ALPHA_VALUES[0]:g} does not bring the forget accuracy down to {100 * s.target:.1f}% "
                       f"at λ = {s.lam:g}; try a smaller λ.", icon=":material/warning:")
        else:
            p = s.point
            c1, c2 = st.columns([4, 1], vertical_alignment="center")
            c1.success(
                f"Gentlest α reaching {100 * s.target:.1f}% forget accuracy at λ = {s.lam:g}: **α = {p.alpha:g}** "
                f"(forget {100 * (landscape.forget_value(p) or 0):.1f}%, retain {100 * (landscape.retain_value(p) or 0):.1f}%, "
                f"{p.fraction_selected:.2%} dampened).",
                icon=":material/lightbulb:",
            )
            c2.button("Use it", key="ls_use_suggestion", on_click=landscape.apply_setting,
                      args=(p.alpha, s.lam), icon=":material/check:", width="stretch")


def retrain_panel(prepared, stored, bound) -> None:
    st.markdown("##### Compare with retraining")
    if not landscape.retrain_available():
        st.caption("The retrain method is not registered in this installation.")
        return
    spec, schedule = prepared.model_spec, prepared.schedule
    st.caption(
        f"Retraining {spec.name} from scratch on the retain set ({schedule.epochs} epochs, {len(prepared.split.retain_train):,} "
        "images) is the gold standard SSD tries to match without retraining. It is computed once per setup and cached."
        + (" On a CPU this takes minutes for this model." if spec.name != "smallcnn" and prepared.device.type == "cpu" else "")
    )
    key = (prepared.key, bound)
    if st.button("Retrain from scratch", key="ls_retrain", icon=":material/model_training:"):
        with layout.working(f"Retraining {spec.name}…") as work:
            st.session_state[K_RETRAINED] = (key, landscape.retrain_reference(prepared, bound, progress=work.progress))
            work.done(f"Retrained in {st.session_state[K_RETRAINED][1]['seconds']:.0f} s")
        st.rerun()  # redraw the frontier with the retrained point
    done = st.session_state.get(K_RETRAINED)
    if done and done[0] == key:
        r = done[1]
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
        st.info(f"Retrained model: forget (test) {pct(r.get('forget_test_acc'))}, forget (train) {pct(r.get('forget_train_acc'))}, "
                f"retain (test) {pct(r.get('retain_test_acc'))}, MIA {pct(r.get('mia'))} ({r['seconds']:.0f} s).",
                icon=":material/model_training:")
        if stored is not None and stored["result"].points:
            best = landscape.closest_setting(stored["result"], r)
            if best is not None:
                c1, c2 = st.columns([4, 1], vertical_alignment="center")
                c1.success(f"Closest grid setting to the retrained model: **α = {best.alpha:g}, λ = {best.lam:g}** "
                           f"(forget {pct(landscape.forget_value(best))}, retain {pct(best.retain_test_acc)}, MIA {pct(best.mia)}).",
                           icon=":material/target:")
                c2.button("Use it", key="ls_use_retrain", on_click=landscape.apply_setting,
                          args=(best.alpha, best.lam), icon=":material/check:", width="stretch")


def alpha_only(prepared) -> None:
    setup = prepared.setup
    st.subheader("Along α only (at the current λ)")
    st.caption(f"A quick one-dimensional cut through the landscape on {alpha_sweep_images(prepared)} (no MIA): every α "
               "of the slider.")
    lam = st.slider("λ — dampening strength", min_value=lab_state.LAMBDA_MIN, max_value=lab_state.LAMBDA_MAX,
                    step=lab_state.LAMBDA_STEP, **lab_state.bind("lam", K_LAMBDA, float))
    bar = st.progress(0.0, text="sweeping α")
    rows = alpha_sweep(prepared, float(lam), progress=lambda f, m: _show_progress(bar, f, m))
    bar.empty()
    current = current_setting(prepared)[0]
    show_chart(sweep_figure(prepared, rows, current), key="chart-alpha-sweep",
               config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 3,
                                                                      "filename": f"{setup.slug()}-l{lam:g}-alpha-sweep"}})
    best = recommend_alpha(prepared, rows)
    if best is not None:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.success(
            f"Suggested α = {best['alpha']:g}: forget accuracy {100 * best['forget_acc']:.1f}%, retain-test "
            f"accuracy {100 * best['retain_acc']:.1f}% (the highest α with the lowest forget accuracy that "
            "keeps retain-test accuracy within 2 points of the original).",
            icon=":material/lightbulb:",
        )
        c2.button("Use this α", key="ls_use_alpha", on_click=landscape.apply_setting, args=(best["alpha"], float(lam)),
                  icon=":material/check:", width="stretch")
    with st.expander("Table"):
        st.dataframe(sweep_table(rows), hide_index=True, width="stretch")


if setup is None:
    st.info("Finish the run setup in the sidebar to see results.", icon=":material/arrow_back:")
else:
    prepared = layout.prepare_with_status(setup)
    if prepared is not None:
        layout.model_card(prepared)
        applied_message()
        alphas, lams, bound, budget, submitted = grid_controls(prepared)
        stored = None
        with guard("sweeping the α × λ grid"):
            if submitted:
                compute(prepared, alphas, lams, bound, budget)
            stored = st.session_state.get(landscape.K_LANDSCAPE)
            if stored is not None and stored["key"][0] != prepared.key:
                stored = None
            if stored is None:
                st.info(f"Press **Compute landscape** to sweep {len(alphas)} α × {len(lams)} λ = "
                        f"{len(alphas) * len(lams)} settings (importances are reused: each setting is one dampening "
                        "and one evaluation).", icon=":material/grid_on:")
            else:
                show_landscape(prepared, stored)
        c1, c2 = st.columns(2, gap="large")
        with c1, guard("suggesting α"):
            suggestion_panel(prepared, bound)
        with c2, guard("retraining"):
            retrain_panel(prepared, stored, bound)
        st.divider()
        with guard("sweeping alpha"):
            alpha_only(prepared)
