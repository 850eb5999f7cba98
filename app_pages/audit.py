"""Audit: did it really forget? Output, features, a per-example attack and relearning, each against
a model retrained without the forget set."""

import streamlit as st

from ui.style import preload_charts

st.title("Did it really forget?")
st.markdown(
    "A model can answer *wrong* on the forget set and still **hold** it: in its features, in what a "
    "membership attack can read from each image, or ready to come back after a few steps of fine-tuning. "
    "The audit checks all four against the **retrained** model — one trained without the forget set, "
    "which has truly never seen it. *Hiding* passes the first row and fails a later one; *forgetting* passes all."
)
preload = preload_charts()

from ssd_core.audit.layers import EMBEDDING_METHODS, umap_installed
from ssd_core.audit.lira import shadow_plan
from ssd_core.audit.relearn import RELEARN_K, RETAIN_RELEARN_K
from ui import audit, compare, layout, live, method_runs, sidebar
from ui.errors import guard, show_error
from ui.state import keep
from unlearning_lab import figures_audit as figs
from unlearning_lab.text import plain

K_METHODS = "audit_methods"
K_SEEDS = "audit_seeds"
K_SHADOWS = "audit_shadows"
K_SEED_KIND = "audit_seed_kind"
K_EMBEDDING = "audit_embedding"
SEED_KINDS = {"unlearning": "the unlearning (one original model)",
              "training": "the training (a new original model per seed)"}
DEFAULT_METHODS = ("assd", "finetune")

setup = sidebar.run_setup()
prepared = layout.prepared_or_hint(setup, "Finish the run setup in the sidebar to audit a method.")
preload.empty()


def controls(prepared) -> tuple[audit.AuditChoice, bool]:
    options = [m for m in method_runs.methods_for(prepared.setup.request.kind) if m != compare.GOLD]
    chosen = st.multiselect(
        "Methods to audit", options, **keep(K_METHODS, [m for m in DEFAULT_METHODS if m in options], valid=options),
        help="Each runs with its default settings (assd: SSD with automatic α). The retrained model is the "
        "reference, so it is always there.",
    )
    seeds = int(st.number_input(
        "Seeds", min_value=1, max_value=10, step=1, **keep(K_SEEDS, 1),
        help="Above 1, each method also runs with that many seeds (each against its own retrained model) and every "
        "number gets a 95% interval. Each seed retrains a model once (cached).",
    ))
    kinds = list(SEED_KINDS) if prepared.setup.model_upload is None else ["unlearning"]
    kind = st.segmented_control(
        "The seeds vary", kinds, format_func=SEED_KINDS.__getitem__, disabled=seeds < 2,
        **keep(K_SEED_KIND, "unlearning", valid=kinds),
        help="Unlearning: every seed unlearns the same original model. Training: every seed also trains its own "
        "original model, so the interval includes how much the answer depends on the model you happened to train "
        "(the CLI's --train-seeds). An uploaded checkpoint has only one original.",
    ) or "unlearning"
    plan = shadow_plan(prepared.dataset, prepared.setup.model)
    counts = sorted({plan.count, 8, 4, 2, 0}, reverse=True)
    shadows = int(st.selectbox(
        "LiRA shadow models", counts, format_func=lambda k: "none: skip LiRA" if k == 0 else f"{k}",
        **keep(K_SHADOWS, plan.count, valid=counts),
        help="The per-example attack compares each image with shadow models trained with and without it. More shadows, "
        "a sharper attack; each one is a training run unless it is shipped or cached (the CLI's --shadows).",
    ))
    pictures = ["pca", "umap"] if umap_installed() else ["pca"]
    embedding: str = st.selectbox(
        "Picture of hiding", pictures, format_func=EMBEDDING_METHODS.__getitem__, **keep(K_EMBEDDING, "pca", valid=pictures),
        help="How the penultimate features are flattened to 2-D. PCA keeps distances along its two axes; UMAP keeps "
        "neighbourhoods, so clusters show more sharply but their sizes and gaps mean less. UMAP appears here when "
        "the umap-learn package is installed (pip install umap-learn).",
    )
    alpha_lam = None
    if prepared.setup.method in chosen:  # the Unlearn page's SSD, at its α and λ
        alpha, lam, sentence = live.setting_sentence(prepared, f"the audit's {prepared.setup.method}")
        alpha_lam = (alpha, lam)
        st.caption(sentence)
    choice = audit.AuditChoice(tuple(chosen), seeds if seeds > 1 else 0, seeds > 1 and kind == "training",
                               None if shadows == plan.count else shadows, alpha_lam, embedding)
    st.caption(plain(audit.cost_sentence(prepared, choice, plan), None))
    run = st.button("Run the audit", type="primary", icon=":material/play_arrow:", disabled=not chosen, key="audit_run")
    return choice, run


def show(prepared, result: dict) -> None:
    setup = prepared.setup
    stem = f"audit-{setup.dataset}-{setup.model}-{setup.forget_slug()}"
    st.subheader("Verdict")
    st.dataframe(audit.verdict_table(result), hide_index=True, width="stretch", key="audit_verdicts")
    for method, sentences in audit.verdict_sentences(result).items():
        st.markdown(f"**{plain(method, None)}:** " + " ".join(plain(s, None) for s in sentences))
    for note in result["audit"]["notes"]:
        st.info(note, icon=":material/info:")
    st.caption(
        "Thresholds: output within 5 points of the retrained model's forget accuracy; features within 15 points of "
        "its probe; LiRA AUC within 0.05 of its AUC; relearning at least half as many steps as it needs. "
        "LiRA is per-example: it compares each image with shadow models that never saw it, where the page's MIA "
        "card fits one entropy threshold for all images."
    )
    st.subheader("Every number")
    numbers = audit.numbers_table(result)
    percent = ("forget test", "retain test", "probe on forgotten class", "LiRA TPR @1% FPR", "LiRA TPR @5% FPR")
    config = {c: st.column_config.NumberColumn(c, format="percent") for c in percent}
    config.update({c: st.column_config.NumberColumn(c, format="%.4f") for c in numbers.columns if "to retrain" in c
                   or "distance" in c})
    config["LiRA AUC"] = st.column_config.NumberColumn("LiRA AUC", format="%.3f")
    config["model"] = st.column_config.TextColumn(pinned=True)
    st.dataframe(numbers, hide_index=True, width="stretch", key="audit_numbers", column_config=config)
    if result["audit"].get("probe_random") is not None:
        st.caption(f"A probe on a randomly initialised model's features reads the forgotten class at "
                   f"{100 * result['audit']['probe_random']:.1f}%: the floor the probe rows should be read against.")
    seeds = audit.seeds_table(result)
    if len(seeds):
        st.subheader("Over training seeds (original models)" if result.get("train_seeds") else "Over seeds")
        st.dataframe(seeds, hide_index=True, width="stretch", key="audit_seeds_table")
    downloads = st.container(horizontal=True, gap="small")  # each button as wide as its label: never cut
    downloads.download_button("Numbers (CSV)", numbers.to_csv(index=False), f"{stem}.csv", "text/csv",
                              icon=":material/download:", width="content")
    downloads.download_button("Audit (JSON)", audit.to_json(result), f"{stem}.json", "application/json",
                              icon=":material/download:", width="content")
    data = result["audit"]
    models = {"original": data["original"], **data["unlearned"], "retrain": data["retrained"]}
    curves = {name: m["relearn"]["accuracy"] for name, m in models.items() if m["relearn"]}
    if curves:
        method_runs.show_figure(figs.relearn_figure(curves), "relearning", stem)
        st.caption(f"Each model fine-tuned on the same {RELEARN_K} forget images; the dotted line is 50%.")
    retain_curves = {name: m["retain_relearn"]["accuracy"] for name, m in models.items() if m.get("retain_relearn")}
    if retain_curves:
        method_runs.show_figure(figs.relearn_figure(retain_curves, retain_only=True), "retain-relearning", stem)
        st.caption(f"Each model fine-tuned on the same {RETAIN_RELEARN_K} retain images, none of the forgotten class: "
                   "a class that comes back here was hidden, not removed; the retrained model shows the level to expect.")
    layered = {name: m["layers"] for name, m in models.items() if m.get("layers")}
    if layered and data["unlearned"]:
        unlearned = list(data["unlearned"])
        shown = unlearned[0] if len(unlearned) == 1 else st.segmented_control(
            "Look inside", unlearned, **keep("audit_inside", unlearned[0], valid=unlearned)) or unlearned[0]
        st.subheader("Inside the model")
        method_runs.show_figure(figs.layers_figure(layered, data.get("probe_random_layers", {}), shown), "layers", stem)
        st.caption("Left: how similar each block's output is to the original's and to the retrained model's on the "
                   "forget images (linear CKA; 1 is the same up to rotation and scale). A model that only hid the class "
                   "stays near 1 to the original up to its last block. Right: a linear probe fitted at each block "
                   "reads the forgotten class's held-out images; the dotted line is a random network, the floor.")
        trio = {n: models[n]["embedding"] for n in ("original", shown, "retrain") if models[n].get("embedding")}
        if len(trio) == 3:
            method_runs.show_figure(figs.embedding_figure(trio, prepared.dataset.classes, prepared.split.forget_classes),
                                    "embedding", stem)
            method = EMBEDDING_METHODS.get(trio["original"].get("method", "pca"), "PCA")
            st.caption(f"Each model's penultimate features on the same images, flattened to 2-D ({method}; each axis "
                       "scaled to unit variance so the panels compare). Compare the middle panel with the retrained one: "
                       "where retraining dissolves the red cluster, forgetting dissolves it too and hiding leaves it in "
                       "place behind the classifier. Where even the retrained model keeps it (the class is easy to tell "
                       "apart from any features, as on digits), the picture cannot separate the two. Under each title: "
                       "the share of the class's images nearest to their own class centre (\"by own centre\") in the full features.")
    method_runs.show_figure(figs.class_distance_figure(prepared.dataset.classes,
                                                   {n: m["per_class_js"] for n, m in models.items() if n != "retrain"},
                                                   prepared.split.forget_classes), "distance-per-class", stem)
    for method, m in data["unlearned"].items():
        if m["lira"] and m["lira"]["exposed"]:
            index = m["lira"]["exposed"][:6]
            images = prepared.dataset.train_x[index].numpy()
            method_runs.show_figure(figs.exposed_figure(images, index, m["lira"]["exposed_scores"][:6], method),
                                f"exposed-{method}", stem, key=f"exposed-{method}")


if prepared is not None:
    layout.model_card(prepared)
    choice, clicked = controls(prepared)
    if clicked:
        with guard("running the audit"):
            with layout.working("Auditing…", failed="The audit failed") as work:
                found = audit.run_audit_cached(prepared, choice, work.progress, work.waiting)
                work.done(f"Audit done in {found['seconds']['total']:.1f} s")
    result = audit.cached_audit(prepared.setup, choice) if choice.methods else None
    if result is not None:
        try:
            show(prepared, result)
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "drawing the audit")
        st.caption("The same audit from the command line: `python -m ssd_core audit "
                   + audit.cli_args(prepared.setup, choice) + "`")
    elif choice.methods:
        st.info("Press **Run the audit** (results are kept for this session).", icon=":material/play_arrow:")
