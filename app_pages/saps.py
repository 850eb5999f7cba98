"""SAPS: which parameters sharpness-aware selection updates, compared with Fisher, magnitude and
random selection, and how forgetting depends on the fraction p that is updated."""

import streamlit as st

from ui.style import preload_charts

st.title("Sharpness-aware parameter selection")
st.markdown(
    "SAPS unlearns by updating only the **top p %** of parameters where the training loss is sharpest (the "
    "largest diagonal Hessian entries); everything else stays frozen. The same masked update can select by "
    "**Fisher** information, by **weight magnitude** or **at random** — so you can see whether sharpness matters: "
    "where in the network each rule looks, and how much is forgotten and kept as p grows."
)
preload = preload_charts()

from ssd_core.methods import get_method, make_config
from ssd_core.methods.loops import per_layer_fraction, top_fraction_mask
from ssd_core.methods.saps import SELECTIONS, selection_scores
from ui import layout, method_runs, sidebar
from ui.errors import show_error
from ui.state import keep, kept
from unlearning_lab import figures_compare as figs

P_OPTIONS = [1.0, 2.0, 5.0, 10.0]
K_P = "saps_p"
K_RULES = "saps_rules"
K_SWEEP_P = "saps_sweep_p"
K_SWEEP_RULES = "saps_sweep_rules"
K_EPOCHS = "saps_epochs"
K_SAMPLES = "saps_samples"
K_FRACTIONS = "_saps_fractions"
MAX_SWEEP_RUNS = 16

setup = sidebar.run_setup()
prepared = layout.prepared_or_hint(setup, "Finish the run setup in the sidebar first.")
preload.empty()


def selection_section(prepared) -> None:
    st.subheader("Where each rule selects")
    c1, c2, c3 = st.columns([1, 3, 1.4], vertical_alignment="bottom")
    p_values = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0]
    p = c1.select_slider("p (%)", options=p_values, format_func=lambda v: f"{v:g}", **keep(K_P, 5.0, valid=p_values))
    rules = c2.multiselect("Selection rules", list(SELECTIONS), **keep(K_RULES, list(SELECTIONS), valid=list(SELECTIONS)))
    samples = int(c3.number_input("Scoring images", min_value=16, max_value=4096, step=64, **keep(K_SAMPLES, 256),
                                  help="Training images the Hessian / Fisher scores are estimated on."))
    store = st.session_state.setdefault(K_FRACTIONS, {})
    base = prepared.setup.split_key()
    keys = {rule: (base, rule, float(p), samples) for rule in rules}
    missing = [rule for rule in rules if keys[rule] not in store]
    if missing and st.button("Compute selections", key="saps_select", icon=":material/play_arrow:"):
        with layout.working("Scoring parameters…") as work, method_runs.gate_slot(work.waiting):
            for i, rule in enumerate(missing):
                config = make_config(get_method("saps").config_cls,
                                     {"selection": rule, "p": p, "hessian_samples": samples,
                                      "seed": prepared.setup.seed})
                work.progress(i / len(missing), f"scoring by {rule}")
                scores = selection_scores(prepared.model, prepared.split.train, config, prepared.device)
                masks = top_fraction_mask(scores, config.p / 100.0)
                store[keys[rule]] = per_layer_fraction(masks)
            work.done("Selections ready")
    ready = {rule: store[keys[rule]] for rule in rules if keys[rule] in store}
    if ready:
        stem = f"saps-{prepared.setup.dataset}-{prepared.setup.model}-{prepared.setup.forget_slug()}"
        method_runs.show_figure(figs.layer_fraction_figure(ready, float(p)), "layer-fraction", stem)
        st.caption("Each bar is the share of one layer's parameters a rule puts in the top p % (ranked over the "
                   "whole network; the same selection the saps method records as its per-layer diagnostic). "
                   "Random spreads evenly; sharpness and Fisher concentrate where the loss is most sensitive.")
    elif rules:
        st.info("Press **Compute selections** to score the parameters with each rule.", icon=":material/play_arrow:")


def sweep_section(prepared) -> None:
    st.subheader("Forgetting against p")
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    ps = sorted(c1.multiselect("p values (%)", P_OPTIONS, format_func=lambda v: f"{v:g}",
                               **keep(K_SWEEP_P, list(P_OPTIONS), valid=P_OPTIONS)))
    rules = c2.multiselect("Rules to sweep", list(SELECTIONS),
                           **keep(K_SWEEP_RULES, ["sharpness", "random"], valid=list(SELECTIONS)))
    defaults = method_runs.default_values("saps", prepared.setup.seed)
    epochs = int(c3.number_input("Epochs", min_value=1, max_value=20, step=1, **keep(K_EPOCHS, int(defaults["epochs"]))))
    samples = int(kept(K_SAMPLES, 256))
    configs = {(rule, p): {**defaults, "selection": rule, "p": p, "epochs": epochs, "hessian_samples": samples}
               for rule in rules for p in ps}
    if len(configs) > MAX_SWEEP_RUNS:
        st.warning(f"At most {MAX_SWEEP_RUNS} runs at a time; pick fewer p values or rules.")
        return
    missing = [k for k, c in configs.items() if method_runs.cached_run(prepared.setup, "saps", c) is None]
    if missing and st.button(f"Run the sweep ({len(missing)} runs)", key="saps_sweep", icon=":material/play_arrow:"):
        with layout.working("Sweeping p…") as work:
            for i, (rule, p) in enumerate(missing):

                def progress(fraction: float, message: str, i=i, rule=rule, p=p) -> None:
                    work.progress((i + min(max(fraction, 0.0), 1.0)) / len(missing), f"{rule}, p = {p:g}%: {message}")

                method_runs.run_cached(prepared, "saps", configs[(rule, p)], progress, on_wait=work.waiting)
            work.done(f"Sweep done ({len(missing)} runs)")
    done = {k: r for k, c in configs.items() if (r := method_runs.cached_run(prepared.setup, "saps", c)) is not None}
    if not done:
        if configs:
            st.info("Press **Run the sweep** (each run is a short NegGrad+ update on the selected parameters).",
                    icon=":material/play_arrow:")
        return
    forget = {rule: [done[(rule, p)].evaluation.forget_test_acc if (rule, p) in done else None for p in ps]
              for rule in rules}
    retain = {rule: [done[(rule, p)].evaluation.retain_test_acc if (rule, p) in done else None for p in ps]
              for rule in rules}
    stem = f"saps-{prepared.setup.dataset}-{prepared.setup.model}-{prepared.setup.forget_slug()}"
    method_runs.show_figure(figs.p_sweep_figure(ps, forget, retain), "p-sweep", stem)
    import pandas as pd

    table = pd.DataFrame([{"rule": rule, "p (%)": p, "forget test": r.evaluation.forget_test_acc,
                           "retain test": r.evaluation.retain_test_acc, "MIA": r.evaluation.mia,
                           "selected": r.diagnostics.get("selected"), "seconds": round(r.total_seconds, 2)}
                          for (rule, p), r in done.items()])
    st.dataframe(table, hide_index=True, key="saps_table", column_config={  # percent, as in the chart
        name: st.column_config.NumberColumn(name, format="percent") for name in ("forget test", "retain test", "MIA")})
    st.download_button("Sweep (CSV)", table.to_csv(index=False), f"{stem}-sweep.csv", "text/csv",
                       icon=":material/download:")


if prepared is not None:
    layout.model_card(prepared)
    for section in (selection_section, sweep_section):
        try:
            section(prepared)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "running SAPS")
