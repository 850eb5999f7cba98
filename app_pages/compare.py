"""Compare: run several unlearning methods on the sidebar's forget request and compare them with
retraining from scratch (the gold standard)."""

import streamlit as st

from ui.style import preload_charts

st.title("Compare methods")
st.markdown(
    "Run several unlearning methods on the same forget request and compare them with **retrain** — a model "
    "trained from scratch without the forget set, the gold standard. A good method lands close to retrain on "
    "every number: it forgets as much as retrain does (not more: forgetting *more* than retrain is itself a "
    "tell-tale sign) and keeps the retain accuracy."
)
preload = preload_charts()

from ssd_core.metrics import OVER_FORGETTING_TOLERANCE
from ui import compare, layout, live, method_runs, sidebar
from ui.errors import guard, show_error
from ui.state import keep
from unlearning_lab import figures
from unlearning_lab import figures_compare as figs

K_METHODS = "cmp_methods"
K_QUANTITY = "cmp_signal_quantity"
DEFAULT_METHODS = ("ssd", "finetune", "retrain")

setup = sidebar.run_setup()
prepared = layout.prepared_or_hint(setup, "Finish the run setup in the sidebar to compare methods.")
preload.empty()


def controls(prepared) -> tuple[list[str], dict[str, dict], bool]:
    kind = prepared.setup.request.kind
    options = method_runs.methods_for(kind)
    chosen = st.multiselect(
        "Methods", options, **keep(K_METHODS, [m for m in DEFAULT_METHODS if m in options], valid=options),
        help=f"Every registered method that supports {prepared.setup.request.describe()} requests. "
        "Add retrain to get the gap-to-retrain columns.",
    )
    configs: dict[str, dict] = {}
    for method in chosen:
        with st.expander(f"{method} settings", expanded=False):
            st.caption(method_runs.available_methods()[method].description)
            if method == prepared.setup.method:  # the Unlearn page's SSD: the same α and λ here
                alpha, lam, sentence = live.setting_sentence(prepared, "this row")
                st.caption(sentence)
                configs[method] = {**method_runs.settings_controls(method, prepared.setup.seed, skip=("alpha", "lam"),
                                                               schedule=prepared.schedule),
                                   "alpha": alpha, "lam": lam}
            else:
                configs[method] = method_runs.settings_controls(method, prepared.setup.seed, schedule=prepared.schedule)
    missing = {m: c for m, c in configs.items() if method_runs.cached_run(prepared.setup, m, c) is None}
    if missing:
        with guard("estimating the run time"):
            st.caption(method_runs.estimate_sentence(prepared, missing))
    run = st.button("Run", type="primary", icon=":material/play_arrow:", disabled=not chosen, key="cmp_run")
    return chosen, configs, run


def run_all(prepared, chosen: list[str], configs: dict[str, dict]) -> None:
    for method in chosen:
        if method_runs.cached_run(prepared.setup, method, configs[method]) is not None:
            continue
        with guard(f"running {method}"):
            with layout.working(f"Running {method}…", failed=f"{method} failed") as work:
                run = method_runs.run_cached(prepared, method, configs[method], work.progress, on_wait=work.waiting)
                work.done(f"{method} done in {run.total_seconds:.1f} s")


def results(prepared, runs: dict) -> None:
    setup = prepared.setup
    stem = f"compare-{setup.dataset}-{setup.model}-{setup.forget_slug()}"
    table = compare.comparison_table(runs, split=prepared.split)
    st.subheader("Results")
    if compare.GOLD not in runs:
        st.info("Add **retrain** to the methods to see each method's gap to the gold standard.", icon=":material/info:")
    flagged = [row["method"] for _, row in table.iterrows() if row["flag"]]
    if flagged:
        st.warning(
            f"Over-forgetting: {', '.join(flagged)} — forget accuracy more than {100 * OVER_FORGETTING_TOLERANCE:.0f} "
            "points below retrain's. A model "
            "that forgets *more* than one never trained on the data reveals that the data was removed.",
            icon=":material/warning:",
        )
    pct = {c: st.column_config.NumberColumn(c, format="percent") for c in table.columns
           if c not in ("method", "seconds", "data touched", "flag")}
    # two tables that each fit the page: the metrics, then the gap to retrain and what each method read
    gaps = [c for c in table.columns if c.startswith("gap ")]
    audit_cols = [c for c in compare.AUDIT_COLUMNS if c in table.columns]
    main = ["method", "flag", *[c for c in table.columns if c not in ("method", "flag", "data touched", *gaps, *audit_cols)]]
    config = {**pct, "seconds": st.column_config.NumberColumn(format="%.2f"),
              "method": st.column_config.TextColumn(pinned=True), "flag": st.column_config.TextColumn("over-forgetting")}
    st.dataframe(table[main], hide_index=True, width="stretch", key="cmp_table", column_config=config)
    loaded = compare.loaded_retrain_note(runs)
    if loaded:
        st.caption(loaded)
    second = ["method", *(gaps if compare.GOLD in runs else []), "data touched"]
    st.markdown("**Gap to retrain and the data each method read**" if compare.GOLD in runs
                else "**The data each method read**")
    st.dataframe(table[second], hide_index=True, width="stretch", key="cmp_table_gaps", column_config=config)
    if audit_cols:
        st.markdown("**Distance of the outputs to retrain** on the forget set (0: answers exactly as retrain does; "
                    "KL and JS in nats). The **Audit** page adds the features, a per-example attack and relearning.")
        st.dataframe(table[["method", *audit_cols]], hide_index=True, width="stretch", key="cmp_table_audit",
                     column_config={c: st.column_config.NumberColumn(c, format="%.4f") for c in audit_cols})
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button("Table (CSV)", table.to_csv(index=False), f"{stem}.csv", "text/csv", icon=":material/download:")
    c2.download_button("Results (JSON)", compare.table_json(table, runs, setup), f"{stem}.json", "application/json",
                       icon=":material/download:")

    method_runs.show_figure(figs.method_metrics_figure({m: r.evaluation.summary() for m, r in runs.items()}),
                        "metrics", stem)
    if compare.GOLD in runs:
        gold = runs[compare.GOLD].evaluation
        from ssd_core.metrics import gap_to_retrain

        to_gold = {m: gap_to_retrain(r.evaluation, gold) for m, r in runs.items() if m != compare.GOLD}
        if to_gold:
            method_runs.show_figure(figs.gap_figure(to_gold), "gap-to-retrain", stem)
    per_class = {"original": prepared.before_eval.per_class_acc, **{m: r.evaluation.per_class_acc for m, r in runs.items()}}
    method_runs.show_figure(figs.per_class_methods_figure(prepared.dataset.classes, per_class, prepared.split.forget_classes),
                        "per-class", stem)

    quantity = st.segmented_control("Forgetting signal", ["loss", "entropy"], required=True,
                                    **keep(K_QUANTITY, "loss", valid=["loss", "entropy"])) or "loss"
    signals = {m: figures.signal_values(r.outputs, prepared.split, quantity, seed=prepared.setup.seed)
               for m, r in runs.items()}
    method_runs.show_figure(figs.signal_histograms_figure(signals, quantity, {m: r.evaluation.mia for m, r in runs.items()}),
                        f"signal-{quantity}", stem)
    st.caption(figures.signal_caption(setup.request.kind))

    seed_section(prepared, runs)

    if setup.request.kind in ("random", "indices"):
        forget = prepared.split.forget_train
        n = min(12, len(forget))
        idx = forget.indices[:n]
        preds = {"original": prepared.before_outputs.train_logits[idx].argmax(1).tolist()}
        preds.update({m: r.outputs.train_logits[idx].argmax(1).tolist() for m, r in runs.items()})
        method_runs.show_figure(
            figs.instance_grid_figure(forget.x[:n].numpy(), forget.y[:n].tolist(), preds, prepared.dataset.classes,
                                      idx.tolist()),
            "forgotten-images", stem,
        )
        if len(forget) > n:
            st.caption(f"The first {n} of {len(forget)} forgotten images.")


K_SEEDS = "cmp_seeds"


def seed_section(prepared, runs: dict) -> None:
    """Every method (not retrain) over S seeds, each against its own retrained model: mean [95% interval]."""
    st.markdown("**Over seeds.** One run is one draw: run each method with several seeds (each against its own "
                "retrained model) to see how much the numbers move.")
    methods = [m for m in runs if m != compare.GOLD]
    c1, c2 = st.columns([1, 3])
    seeds = int(c1.number_input("Seeds", min_value=2, max_value=10, step=1, **keep(K_SEEDS, 5)))
    if c2.button(f"Run over {seeds} seeds", key="cmp_run_seeds", disabled=not methods, icon=":material/repeat:"):
        for method in methods:
            if compare.cached_seed_runs(prepared.setup, method, runs[method].config, seeds) is not None:
                continue
            with guard(f"running {method} over seeds"):
                with layout.working(f"Running {method} over {seeds} seeds…", failed=f"{method} failed") as work:
                    compare.run_seeds_cached(prepared, method, runs[method].config, seeds, work.progress,
                                             on_wait=work.waiting)
                    work.done(f"{method}: {seeds} seeds done")
    found = {m: r for m in methods if (r := compare.cached_seed_runs(prepared.setup, m, runs[m].config, seeds)) is not None}
    if found:
        st.dataframe(compare.interval_table(found), hide_index=True, width="stretch", key="cmp_seed_table")
        st.caption(f"Mean [95% interval] over {seeds} seeds (Student's t). An interval that overlaps retrain's is not "
                   "a difference you can claim.")


if prepared is not None:
    layout.model_card(prepared)
    chosen, configs, clicked = controls(prepared)
    if clicked:
        run_all(prepared, chosen, configs)
    runs = {m: r for m in chosen if (r := method_runs.cached_run(prepared.setup, m, configs[m])) is not None}
    if runs:
        try:
            results(prepared, runs)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "drawing the comparison")
        missing = [m for m in chosen if m not in runs]
        if missing:
            st.caption(f"Not run yet with these settings: {', '.join(missing)} (press Run).")
    elif chosen:
        st.info("Press **Run** to run the chosen methods (results are kept for this session).", icon=":material/play_arrow:")
