"""Lesson: a guided walk through SSD in eight steps, each with its formula, a live figure of the
current model and a small task that is checked automatically."""

from dataclasses import replace

import streamlit as st

from unlearning_lab.lesson import HIDING_OPTIONS, QUIZ_OPTIONS, STEP_KEYS, STEPS, get_step

K_STEP = "lesson_step"
K_DONE = "_lesson_done"
K_METRICS = "_lesson_metrics"

st.title("Lesson: how SSD forgets")
st.markdown(
    "Eight short steps through Selective Synaptic Dampening on the model chosen in the sidebar. Each step has a "
    "formula, a live figure and a small task; the task is checked as you go. Presets below set up a classroom "
    "example in one click."
)

from ui import layout, live, resources, sidebar
from ui import state as lab_state
from ui.errors import guard, show_error
from ui.landscape import alpha_sweep, alpha_sweep_images, sweep_figure
from ui.presets import render_picker
from ui.state import ALPHA_VALUES, K_ALPHA, K_LAMBDA
from ui.theme import show_chart
from ui.views import FIGURES, fig_accuracy_summary, fig_saliency, fig_signal, options_from_state
from unlearning_lab.figures import short_layer_name  # heavy imports after the first paint
from unlearning_lab.lesson import lesson_state, neighbour_sentence
from unlearning_lab.text import plain

render_picker("lesson")

def go(delta: int) -> None:
    index = STEP_KEYS.index(lab_state.kept(K_STEP, STEP_KEYS[0]))
    lab_state.set_kept(K_STEP, STEP_KEYS[min(max(index + delta, 0), len(STEP_KEYS) - 1)])


done: set = st.session_state.setdefault(K_DONE, set())
chosen_step = st.segmented_control(
    "Step", list(STEP_KEYS), required=True, label_visibility="collapsed", width="stretch",
    format_func=lambda k: ("✓ " if k in done else "") + get_step(k).title,
    **lab_state.keep(K_STEP, STEP_KEYS[0], valid=STEP_KEYS),
)
step = get_step(chosen_step if chosen_step in STEP_KEYS else STEP_KEYS[0])


def metrics_at(prepared, alpha: float, lam: float) -> dict:
    """Summary metrics at another setting (for checks that compare with a neighbouring alpha)."""
    cache = st.session_state.get(K_METRICS)
    if cache is None or cache[0] != prepared.key:
        memo: dict[tuple[float, float], dict] = {}
        cache = (prepared.key, memo)
        st.session_state[K_METRICS] = cache
    if (alpha, lam) not in cache[1]:
        cache[1][(alpha, lam)] = resources.compute_live(prepared, alpha, lam, scratch=None).evaluation.summary()
    return cache[1][(alpha, lam)]


def controls(prepared) -> tuple[float, float]:
    """This step's controls (views of the session's alpha and lambda, the same as on the Unlearn
    page); returns the alpha the page dampens with (automatic, or set by hand) and lambda."""
    alpha, setting = live.effective_alpha(prepared)
    if step.controls:
        for column, name in zip(st.columns(len(step.controls)), step.controls):
            with column:
                if name == "auto":
                    live.auto_toggle(setting)
                elif name == "alpha":
                    live.alpha_slider("α — selection threshold (log scale)", K_ALPHA,
                                      "Selected: I_f > α · I_D. Click the slider and use ← → to step. Moving it sets α "
                                      "by hand.", shown=alpha if setting is not None else None)
                else:
                    live.lambda_slider("λ — dampening strength", K_LAMBDA, "β = min(λ · I_D / I_f, 1).", setting)
    if setting is not None:
        st.caption(plain(setting.sentence(), None))
        if setting.cannot_forget():
            st.warning(plain(setting.cannot_forget() or "", None), icon=":material/warning:")
        return alpha, float(setting.lam_used)
    return alpha, float(lab_state.current().lam)


def figure(prepared, result) -> None:
    key = f"lesson-{step.key}"
    if step.figure in FIGURES:  # the Unlearn page's figure of that id (the weights of the default layer)
        options = replace(options_from_state(prepared), weight_layer=prepared.default_layer())
        shown = FIGURES[step.figure].build(prepared, result, options)
        if shown is not None:
            show_chart(shown, key=key)
    elif step.figure == "signals":
        lens = st.segmented_control("Look at", ["accuracy", "saliency", "membership inference"], key="lesson_lens",
                                    default="accuracy", required=True)
        if lens == "saliency":
            show_chart(fig_saliency(prepared, result, options_from_state(prepared)), key=f"{key}-saliency")
        elif lens == "membership inference":
            show_chart(fig_signal(prepared, result, "entropy"), key=f"{key}-mia")
        else:
            show_chart(fig_accuracy_summary(prepared, result), key=f"{key}-accuracy")
    elif step.figure == "alpha-sweep":
        rows = alpha_sweep(prepared, result.lam)
        show_chart(sweep_figure(prepared, rows, result.alpha), key=key)
        if prepared.live_sample is not None:  # say which images, where they are not all of them
            st.caption(f"Every α of the slider, on {alpha_sweep_images(prepared)}.")
    elif step.figure == "relearn":
        curves = relearn_curves(prepared, result)
        if curves is not None:
            from unlearning_lab.figures_audit import relearn_figure

            show_chart(relearn_figure({"unlearned (now)": curves[0].accuracy, "retrain": curves[1].accuracy}), key=key)
            from ssd_core.audit.layers import EMBEDDING_METHODS, umap_installed
            from ui.lesson import lesson_embedding
            from unlearning_lab.figures_audit import embedding_figure

            method = "pca"
            if umap_installed():  # UMAP only where its package is: PCA needs nothing
                method = st.segmented_control("Flattened by", list(EMBEDDING_METHODS), format_func=EMBEDDING_METHODS.__getitem__,
                                              key=f"{key}-embedding-method", default="pca") or "pca"
            with guard("drawing the features"):
                trio = lesson_embedding(prepared, result, method)
                show_chart(embedding_figure(trio, prepared.dataset.classes, prepared.split.forget_classes),
                           key=f"{key}-embedding")
                st.caption("The same images seen by each model's last hidden layer, flattened to 2-D "
                           f"({EMBEDDING_METHODS[method]}). Is the red "
                           "cluster still there in the middle panel? Compare it with the retrained model's: where "
                           "retraining dissolves it and SSD does not, the class is hidden, not forgotten.")


def relearn_curves(prepared, result):
    """Relearning curves of the dampened model and of the retrained model (cached per setting)."""
    if not len(prepared.split.forget_test):
        st.caption("Relearning is measured on the forgotten class's test images: pick a class to forget.")
        return None
    from ui.lesson import lesson_relearn, lesson_relearn_known

    if lesson_relearn_known(prepared, result):
        return lesson_relearn(prepared, result, None)
    curves = None
    with guard("measuring relearning"), \
            layout.working("Measuring relearning (the first time trains the retrained model)…") as work:
        curves = lesson_relearn(prepared, result, work.progress)
        work.done("Relearning measured")
    return curves


def numbers(prepared, result, state) -> None:
    b, a = prepared.before, result.evaluation
    forget_b = b.forget_test_acc if b.forget_test_acc is not None else b.forget_train_acc
    forget_a = a.forget_test_acc if a.forget_test_acc is not None else a.forget_train_acc
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    cells = [
        ("Forget acc.", pct(forget_a), f"before {pct(forget_b)}"),
        ("Retain acc. (test)", pct(a.retain_test_acc), f"before {pct(b.retain_test_acc)}"),
        ("MIA", pct(a.mia), f"before {pct(b.mia)}"),
        ("Selected", f"{result.report.fraction_selected:.2%}", f"{result.report.total_selected:,} parameters"),
        ("Mean β", "n/a" if state.mean_beta is None else f"{state.mean_beta:.1%}", "size kept"),
    ]
    for place, (label, value, note) in zip(live.card_row(len(cells)), cells):  # as the Unlearn page's cards
        place.metric(label, value, note, delta_color="off", delta_arrow="off", border=True)


def task(prepared, result) -> None:
    st.markdown(f"**Your task.** {step.task}")
    answer = None
    if step.key == "why":
        answer = st.radio("Your answer", list(QUIZ_OPTIONS), key="lesson_answer_why", index=None,
                          format_func=QUIZ_OPTIONS.get, label_visibility="collapsed")
    elif step.key == "importance":
        names = [s.name for s in prepared.ratio_summaries if s.n_finite > 0]
        if st.session_state.get("lesson_answer_importance") not in names:
            st.session_state.pop("lesson_answer_importance", None)
        answer = st.selectbox("Your answer", names, key="lesson_answer_importance", index=None,
                              format_func=short_layer_name, placeholder="pick a parameter tensor")
    elif step.key == "hiding":
        answer = st.radio("Your answer", list(HIDING_OPTIONS), key="lesson_answer_hiding", index=None,
                          format_func=HIDING_OPTIONS.get, label_visibility="collapsed")
    auto = lab_state.current().alpha_auto
    lower = higher = None
    state = lesson_state(prepared, result, ALPHA_VALUES, answer, auto=auto)
    if "lower" in step.needs and state.lower_alpha is not None:
        lower = metrics_at(prepared, state.lower_alpha, result.lam)
    if "higher" in step.needs and state.higher_alpha is not None:
        higher = metrics_at(prepared, state.higher_alpha, result.lam)
    relearn = None
    if step.figure == "relearn" and len(prepared.split.forget_test):
        from ui.lesson import lesson_relearn

        found = lesson_relearn(prepared, result, None)
        relearn = (found[0].steps_to_target, found[1].steps_to_target)
    state = lesson_state(prepared, result, ALPHA_VALUES, answer, lower=lower, higher=higher, relearn=relearn, auto=auto)
    if step.figure in ("importance-scatter", "weights", "signals", "alpha-sweep"):
        numbers(prepared, result, state)
    if step.figure in ("per-class-accuracy", "signals", "alpha-sweep") and prepared.split.forget_classes \
            and prepared.setup.request.kind == "class":
        sentence = neighbour_sentence([plain(c, 40) for c in prepared.dataset.classes],  # names may be the user's
                                      prepared.before.per_class_acc, result.evaluation.per_class_acc,
                                      prepared.split.forget_classes)
        if sentence:
            st.caption(sentence)
    ok, message = step.check(state)
    if ok:
        done.add(step.key)
        st.success(message, icon=":material/task_alt:")
    else:
        st.info(message, icon=":material/help:")


setup = sidebar.run_setup()
if setup is None:
    st.info("Finish the run setup in the sidebar to start the lesson.", icon=":material/arrow_back:")
else:
    prepared = layout.prepare_with_status(setup)
    if prepared is not None:
        layout.model_card(prepared)
        if setup.request.kind not in ("class", "subclass"):
            st.caption("The tasks are written for forgetting a whole class (try a classroom preset). With random or "
                       "picked samples, good forgetting looks like test accuracy on those samples, not 0%.")
        st.subheader(step.title)
        st.markdown(step.text)
        st.latex(step.formula)
        alpha, lam = controls(prepared)
        result = None
        with guard("re-dampening the model"):
            result = live.live_result(prepared, alpha, lam)
        if result is not None:
            with guard("drawing the figure"):
                figure(prepared, result)
            try:
                task(prepared, result)
            except Exception as exc:  # noqa: BLE001
                show_error(exc, "checking the task")
        st.caption(f"Tasks done: {len(done & set(STEP_KEYS))} of {len(STEPS)}.")

c1, _, c3 = st.columns([2, 3, 2])  # wide enough for "Previous" in presentation mode at 1024 px
index = STEP_KEYS.index(step.key)
c1.button("Previous", key="lesson_prev", on_click=go, args=(-1,), disabled=index == 0,
          icon=":material/arrow_back:", width="stretch")
c3.button("Next", key="lesson_next", on_click=go, args=(1,), disabled=index == len(STEP_KEYS) - 1,
          icon=":material/arrow_forward:", icon_position="right", width="stretch", type="primary")
