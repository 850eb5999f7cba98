"""The guided lesson: eight short steps through SSD, each with a few sentences, its formula, a live
figure of the current model and one small task whose answer is checked automatically.

The checks are pure functions of a :class:`LessonState` (plain numbers: the current alpha and
lambda, the metrics before and after, the share of parameters dampened...), so they are tested
with constructed states; :func:`lesson_state` builds the state from the live run. The page
(``app_pages/lesson.py``) draws it; ``ui.lesson`` measures step 8's relearning curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ssd_core.guard import format_alpha

Metrics = Mapping[str, float | None]
Verdict = tuple[bool, str]


@dataclass(frozen=True)
class LessonState:
    """What the checks look at (accuracies and MIA as fractions in [0, 1])."""

    method: str = "ssd"
    request_kind: str = "class"
    alpha: float = 10.0
    lam: float = 1.0
    before: Metrics = field(default_factory=dict)  # the original model
    after: Metrics = field(default_factory=dict)  # dampened at (alpha, lam)
    fraction_selected: float = 0.0  # share of parameters with I_f > alpha * I_D
    mean_beta: float | None = None  # mean dampening factor over the selected parameters
    layer_medians: Mapping[str, float] = field(default_factory=dict)  # median log10(I_f / I_D) per tensor
    answer: Any = None  # the student's answer, for question-style tasks
    lower_alpha: float | None = None  # the next smaller alpha on the slider (None at the end)
    lower: Metrics | None = None  # metrics there (same lambda)
    higher_alpha: float | None = None  # the next larger alpha on the slider
    higher: Metrics | None = None
    relearn_steps: int | None = None  # fine-tuning steps until the dampened model is back at 50% (None: not measured)
    retrained_relearn_steps: int | None = None  # the same for the model retrained without the forget set
    relearn_measured: bool = False  # whether the two relearning curves were measured
    relearn_max: int = 30  # steps measured (a curve that never reaches 50% counts as relearn_max + 1)
    alpha_auto: bool = False  # alpha is automatic (chosen for the student, not on the slider)


def forget_acc(metrics: Metrics | None) -> float | None:
    """Forget accuracy on test images, or on the forget set itself when there are none (random samples)."""
    if not metrics:
        return None
    value = metrics.get("forget_test_acc")
    return value if value is not None else metrics.get("forget_train_acc")


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f}%"


def neighbour_sentence(classes: list[str], before: list[float | None], after: list[float | None],
                       forgotten: tuple[int, ...]) -> str | None:
    """Which kept class moved most, in one sentence: usually the one that looks most like the forgotten
    class (Fashion-MNIST: Shirt when the T-shirts go). None without per-class numbers."""
    changes = [(abs(a - b), a - b, i) for i, (b, a) in enumerate(zip(before, after, strict=True))
               if i not in forgotten and b is not None and a is not None]
    if not changes:
        return None
    size, change, moved = max(changes)
    if size < 0.005:
        return "Every kept class is within half a point of its accuracy before: the forgetting stayed on its class."
    head = (f"Of the classes kept, **{classes[moved]}** moved most: {_pct(before[moved])} → {_pct(after[moved])} "
            f"({100 * change:+.1f} points).")
    if change > 0:
        return (head + " Its images that the model used to mistake for the forgotten class cannot go there any more, "
                "and many land on their own class: forgetting changes the neighbours' answers too.")
    return (head + " Classes that look like the forgotten one share its weights, so dampening those weights hits them "
            "first; watch this class as you move α.")


def neighbours(alpha: float, ladder: tuple[float, ...]) -> tuple[float | None, float | None]:
    """The alphas of the slider's ``ladder`` just below and just above ``alpha`` (None past either end)."""
    values = list(ladder)
    lower = [a for a in values if a < alpha - 1e-12]
    higher = [a for a in values if a > alpha + 1e-12]
    return (lower[-1] if lower else None), (higher[0] if higher else None)


# ---------------------------------------------------------------------------------------------
# The checks (pure)

QUIZ_OPTIONS = {
    "zero": "The forget accuracy drops to 0%, whatever happens to the rest",
    "retrain": "The model behaves like one retrained from scratch without the forget set",
    "random": "The model's outputs become random on every image",
}
ALPHA_TASK_MAX_FRACTION = 0.01
ALPHA_TASK_MAX_FORGET = 0.10
BETA_RANGE = (0.10, 0.20)
LAMBDA_TASK_MAX = 5.0  # the λ slider's end (ui.state.LAMBDA_MAX)
MIA_TASK_MAX = 0.05
RETAIN_TASK_MIN = 0.95
RETAIN_TASK_MARGIN = 0.02  # where the original keeps less than RETAIN_TASK_MIN + this: this below it
COLLAPSE_TASK_MAX_DROP = 0.03
COLLAPSE_TASK_MAX_FORGET = 0.05


def check_why(state: LessonState) -> Verdict:
    if state.answer is None:
        return False, "Pick one of the three answers."
    if state.answer == "retrain":
        return True, ("Right: the gold standard is retraining from scratch without the forget set. SSD tries to get "
                      "close to that model without retraining.")
    if state.answer == "zero":
        return False, ("Not quite: 0% is what a retrained model gives for a forgotten class, but for random samples a "
                       "retrained model still gets many right (like test images), and wrecking the rest of the model "
                       "is no success either. What is the reference every unlearning method is compared with?")
    return False, ("No: a model that is random everywhere has forgotten everything, including what it should keep. "
                   "What is the reference every unlearning method is compared with?")


def _layer(name: str) -> str:
    """A tensor's name as the answer options show it (without the model's wrapper prefix)."""
    from unlearning_lab.figures import short_layer_name

    return short_layer_name(name)


def check_importance(state: LessonState) -> Verdict:
    if not state.layer_medians:
        return False, "No tensor has both importances above zero here."
    best = max(state.layer_medians, key=lambda n: state.layer_medians[n])
    if state.answer is None:
        return False, "Pick a parameter tensor."
    if state.answer not in state.layer_medians:
        return False, "That tensor has no finite importance ratio; pick one of the boxes in the figure."
    if state.answer == best:
        return True, (f"Right: {_layer(state.answer)} has the highest median log10(I_f / I_D) "
                      f"({state.layer_medians[best]:.2f}): its parameters matter most to the forget set relative to "
                      "all data, so SSD will dampen most there.")
    return False, (f"Its median log10(I_f / I_D) is {state.layer_medians[state.answer]:.2f}; another tensor's box sits "
                   "higher. Look for the highest middle line.")


def check_alpha(state: LessonState) -> Verdict:
    """The largest alpha on the slider that still forgets: reachable on every setup, since the slider's
    end counts as an answer when even it forgets."""
    forget = forget_acc(state.after)
    if state.alpha_auto:
        return False, (f"Automatic α chose α = {format_alpha(state.alpha)} for you. Move the slider to choose α "
                       "yourself.")
    if forget is None or forget > ALPHA_TASK_MAX_FORGET:
        return False, (f"At α = {format_alpha(state.alpha)} only {state.fraction_selected:.2%} of the parameters are selected and the "
                       f"forget accuracy is {_pct(forget)}: too few were dampened to forget. Lower α.")
    higher = forget_acc(state.higher)
    if state.higher_alpha is not None and higher is not None and higher <= ALPHA_TASK_MAX_FORGET:
        return False, (f"α = {format_alpha(state.alpha)} forgets, and so does α = {format_alpha(state.higher_alpha)}, which selects fewer "
                       "parameters. Raise α.")
    largest = ("the largest α on the slider, and it still forgets" if state.higher_alpha is None else
               f"the largest that forgets (at α = {format_alpha(state.higher_alpha)} the forget accuracy is {_pct(higher)})")
    return True, (f"Done: α = {format_alpha(state.alpha)} is {largest}. It dampens only {state.fraction_selected:.2%} of the "
                  f"parameters and the forget accuracy is {_pct(forget)}: forgetting needs surprisingly few.")


def check_lambda(state: LessonState) -> Verdict:
    beta = state.mean_beta
    lo, hi = BETA_RANGE
    if beta is None:
        return False, f"Nothing is selected at α = {format_alpha(state.alpha)}, so λ has nothing to act on: lower α first."
    if beta < lo and state.lam / state.alpha < lo and state.lam >= LAMBDA_TASK_MAX:
        return False, (f"Mean β is {beta:.1%}, and at α = {format_alpha(state.alpha)} it can never pass λ/α = "
                       f"{state.lam / state.alpha:.1%}, even at the largest λ: selected parameters have I_f > α · I_D. "
                       "Lower α first (for example to 10), then set λ.")
    if beta < lo and state.lam >= LAMBDA_TASK_MAX:  # "raise λ" cannot be followed at the slider's end
        return False, (f"The dampened parameters keep {beta:.1%} of their size on average (mean β): shrunk too hard, "
                       f"even at the largest λ ({state.lam:g}). A lower α selects parameters with a smaller I_f / I_D, "
                       "which λ shrinks less: lower α.")
    if beta < lo:
        return False, (f"The dampened parameters keep {beta:.1%} of their size on average (mean β): shrunk too hard. "
                       "β = λ · I_D / I_f grows with λ, so raise λ"
                       + (f" (β stays below λ/α = {state.lam / state.alpha:.1%}; a lower α leaves λ more room)."
                          if state.lam / state.alpha < lo else "."))
    if beta > hi:
        return False, f"Mean β is {beta:.1%}: too gentle. Lower λ."
    return True, (f"Done: at λ = {state.lam:g} the dampened parameters keep {beta:.1%} of their size on average. "
                  f"Forget accuracy is now {_pct(forget_acc(state.after))}: is the class still forgotten?")


def check_signals(state: LessonState) -> Verdict:
    mia = state.after.get("mia") if state.after else None
    if mia is None:
        return False, "The MIA cannot be computed for this setup (it needs retain and test images)."
    if mia > MIA_TASK_MAX and state.lam > 1:  # lowering α alone does not help while λ barely shrinks what it selects
        return False, (f"At α = {format_alpha(state.alpha)} the attack still calls {_pct(mia)} of the forget samples members "
                       f"(more than 5%). At λ = {state.lam:g} the selected parameters keep much of their size "
                       "(β = λ · I_D / I_f): lower λ (1 is the paper's), then α.")
    if mia > MIA_TASK_MAX:
        return False, (f"At α = {format_alpha(state.alpha)} the attack still calls {_pct(mia)} of the forget samples members "
                       "(more than 5%). Lower α to dampen more.")
    higher_mia = state.higher.get("mia") if state.higher else None
    if state.higher_alpha is not None and higher_mia is not None and higher_mia <= MIA_TASK_MAX:
        return False, (f"MIA is {_pct(mia)}, but a gentler α = {format_alpha(state.higher_alpha)} also keeps it at or below 5% "
                       f"({_pct(higher_mia)}). Raise α to find the gentlest one.")
    return True, (f"Done: α = {format_alpha(state.alpha)} is the gentlest slider value with MIA at or below 5% ({_pct(mia)}); "
                  + (f"at α = {format_alpha(state.higher_alpha)} it is {_pct(higher_mia)}."
                     if state.higher_alpha is not None else "there is no gentler α on the slider."))


def retain_bar(state: LessonState) -> float:
    """The trade-off task's bar: 95%, or 2 points below the original where the original keeps less than 97%
    (Fashion-MNIST's smallcnn: 93%), since a bar no α reaches would be no task."""
    before = state.before.get("retain_test_acc") if state.before else None
    # rounded: 0.93 - 0.02 is 0.9100000000000001 in floats, which would call a retain accuracy of 91.0% below 91.0%
    return RETAIN_TASK_MIN if before is None else min(RETAIN_TASK_MIN, round(before - RETAIN_TASK_MARGIN, 9))


def check_tradeoff(state: LessonState) -> Verdict:
    retain = state.after.get("retain_test_acc") if state.after else None
    if retain is None:
        return False, "There are no retain test images in this setup."
    bar = retain_bar(state)
    if retain < bar:
        return False, f"At α = {format_alpha(state.alpha)} retain accuracy is {_pct(retain)}, below {_pct(bar)}: raise α."
    lower_retain = state.lower.get("retain_test_acc") if state.lower else None
    if state.lower_alpha is not None and lower_retain is not None and lower_retain >= bar:
        return False, (f"Retain accuracy is {_pct(retain)}, and the smaller α = {format_alpha(state.lower_alpha)} still keeps "
                       f"{_pct(lower_retain)}: lower α.")
    return True, (f"Done: α = {format_alpha(state.alpha)} is the smallest slider value keeping retain accuracy at or above "
                  f"{_pct(bar)} ({_pct(retain)}); forget accuracy there is {_pct(forget_acc(state.after))}. "
                  + (f"At α = {format_alpha(state.lower_alpha)} retain accuracy falls to {_pct(lower_retain)}."
                     if state.lower_alpha is not None else ""))


def check_collapse(state: LessonState) -> Verdict:
    forget = forget_acc(state.after)
    before = state.before.get("retain_test_acc") if state.before else None
    after = state.after.get("retain_test_acc") if state.after else None
    if forget is None or before is None or after is None:
        return False, "This setup has no retain test images to check."
    drop = before - after
    if drop > COLLAPSE_TASK_MAX_DROP:
        return False, (f"At α = {format_alpha(state.alpha)} retain accuracy (test) is {_pct(after)}, {100 * drop:.1f} points below the "
                       "original: the retained classes collapse with the forget set. Raise α, or switch Automatic α on.")
    if forget > COLLAPSE_TASK_MAX_FORGET:
        return False, (f"The rest is kept, but forget accuracy is {_pct(forget)}: α is too high to forget. Lower α, or "
                       "switch Automatic α on.")
    return True, (f"Done: at α = {format_alpha(state.alpha)} forget accuracy is {_pct(forget)} and retain accuracy (test) is within "
                  f"{max(0.0, 100 * drop):.1f} points of the original.")


HIDING_OPTIONS = {
    "hidden": "It comes back much faster than in the retrained model: SSD hid the class, the weights still hold it",
    "removed": "It comes back about as slowly as in the retrained model: it is as forgotten as if never learnt",
}


def hiding_truth(state: LessonState) -> str | None:
    """'hidden' when the dampened model relearns in under half the retrained model's steps (the
    audit's relearning rule), 'removed' otherwise; None before both curves are measured."""
    if not state.relearn_measured:
        return None
    mine = state.relearn_steps if state.relearn_steps is not None else state.relearn_max + 1
    gold = state.retrained_relearn_steps if state.retrained_relearn_steps is not None else state.relearn_max + 1
    return "hidden" if mine < 0.5 * gold else "removed"


def check_hiding(state: LessonState) -> Verdict:
    truth = hiding_truth(state)
    forget = forget_acc(state.after)
    if forget is not None and forget > COLLAPSE_TASK_MAX_FORGET:
        return False, f"First forget the class (forget accuracy is {_pct(forget)}): switch Automatic α on."
    if truth is None:
        return False, "The relearning curves are not measured yet."
    if state.answer is None:
        return False, "Pick the sentence the curves support."
    def steps(n: int | None) -> str:
        return f"more than {state.relearn_max} steps" if n is None else f"{n} step" + ("" if n == 1 else "s")
    mine, gold = steps(state.relearn_steps), steps(state.retrained_relearn_steps)
    if state.answer != truth:
        return False, (f"Look again: the dampened model is back at 50% after {mine}, the retrained one after {gold}.")
    if truth == "hidden":
        return True, (f"Right: back at 50% after {mine} against {gold} for the retrained model. A 0% forget accuracy "
                      "says the output changed, not that the knowledge is gone. The Audit page checks this and more.")
    return True, (f"Right: {mine} against {gold} for the retrained model, so relearning finds nothing left to "
                  "revive. The Audit page also checks the features and a per-example attack.")


# ---------------------------------------------------------------------------------------------
# The steps


LESSON_FIGURES = ("signals", "alpha-sweep", "relearn")  # the Lesson's own figures; the rest are ui.views.FIGURES ids


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    text: str
    formula: str  # LaTeX for st.latex
    task: str
    check: Callable[[LessonState], Verdict]
    figure: str  # a registered figure id (ui.views.FIGURES), or one of the Lesson's own: LESSON_FIGURES
    controls: tuple[str, ...] = ()  # "alpha", "lambda"
    needs: tuple[str, ...] = ()  # "higher", "lower": metrics at a neighbouring alpha


STEPS: tuple[Step, ...] = (
    Step(
        "why", "1 · Why unlearn?",
        "A trained network remembers its training data. A data-protection request (the right to be forgotten), a "
        "mislabelled or poisoned batch, or a copyright claim can require that part of it, the **forget set** "
        "$D_f$, is removed. The honest way is to retrain from scratch on the rest, $D_r = D \\setminus D_f$, which is "
        "slow. Unlearning methods try to reach (nearly) the same model fast. The figure shows the current model's "
        "per-class accuracy before and after SSD with the current α and λ.",
        r"\theta_{\mathrm{unlearned}} \;\approx\; \theta_{\mathrm{retrained}} = \arg\min_{\theta} "
        r"\sum_{(x,y)\in D_r} \mathcal{L}\big(f_\theta(x), y\big), \qquad D_r = D \setminus D_f",
        "What does a perfect unlearning result look like?",
        check_why, "per-class-accuracy",
    ),
    Step(
        "importance", "2 · Importance as Fisher information",
        "Which parameters hold what? SSD measures how much the loss depends on each parameter $\\theta_i$: the squared "
        "gradient, averaged over mini-batches. This is the diagonal of the **Fisher information**. It does so twice: "
        "over all training data ($I_D$, computed once and cached) and over the forget set ($I_f$). A parameter "
        "whose $I_f$ is large relative to $I_D$ is a *specialist* for the forget set. Each box shows how "
        "$\\log_{10}(I_f/I_D)$ is spread within one parameter tensor.",
        r"I_{D,i} = \frac{1}{B}\sum_{b=1}^{B}\left(\frac{\partial \mathcal{L}(\mathrm{batch}_b)}{\partial \theta_i}\right)^{2}"
        r"\quad\text{over } D, \qquad I_{f,i}\ \text{the same over } D_f",
        "Which parameter tensor is most specialised for the forget set (the highest median log10(I_f / I_D))?",
        check_importance, "importance-ratios",
    ),
    Step(
        "alpha", "3 · Selecting with α",
        "SSD only touches the specialists: a parameter is **selected** when its importance for the forget set is more "
        "than α times its importance for all data. In the scatter each dot is one parameter; the dashed line is "
        "$I_f = \\alpha I_D$ and the dots above it are selected. Move α and watch the line and the count.",
        r"\text{select } i \quad\Longleftrightarrow\quad I_{f,i} \;>\; \alpha \, I_{D,i}",
        "Find the largest α on the slider that still forgets (forget accuracy at most 10%): the fewest parameters "
        "that do the job.",
        check_alpha, "importance-scatter", controls=("alpha",), needs=("higher",),
    ),
    Step(
        "lambda", "4 · Dampening with λ",
        "Each selected parameter is shrunk towards zero by the factor β: the more it specialises (the larger "
        "$I_f/I_D$), the harder. λ scales β: smaller λ, harder dampening. β never exceeds 1 and never exceeds λ/α "
        "for a selected parameter. The scatter shows every weight of one layer before (x) and after (y): dampened "
        "weights leave the diagonal.",
        r"\theta_i \;\leftarrow\; \beta_i\,\theta_i, \qquad \beta_i = \min\!\left(\lambda\,\frac{I_{D,i}}{I_{f,i}},\; 1\right)"
        r"\quad\text{for selected } i",
        "Set λ so that the dampened parameters keep on average between 10% and 20% of their size (mean β).",
        check_lambda, "weights", controls=("alpha", "lambda"),
    ),
    Step(
        "signals", "5 · What forgetting looks like",
        "Three lenses. **Accuracy**: the forget accuracy falls, the retain accuracy stays. **Saliency**: the pixels the "
        "model used as evidence for the forgotten class fade. **Membership inference (MIA)**: an attacker trained to "
        "tell training images from unseen ones by the entropy of the model's prediction; after good unlearning it "
        "should call few forget samples 'members'.",
        r"\mathrm{MIA} = \frac{1}{|D_f|}\sum_{x \in D_f} \mathbb{1}\big[g\big(H(f_\theta(x))\big) = \text{member}\big],"
        r"\qquad H(p) = -\sum_{c} p_c \log p_c",
        "Find the gentlest (largest) α on the slider that still keeps the MIA at or below 5%.",
        check_signals, "signals", controls=("alpha", "lambda"), needs=("higher",),
    ),
    Step(
        "tradeoffs", "6 · Trade-offs, and SSD without labels",
        "α is a trade-off: small α dampens many parameters (forgets, but hurts what should be kept), large α dampens "
        "few (safe, but may not forget). The figure sweeps every α of the slider at the current λ; the "
        "**Landscape** page does α and λ together. **Loss-free SSD (LFSSD)** needs no labels: it replaces the loss "
        "by the squared norm of the network's output and accumulates the absolute gradient; its importances are on "
        "another scale, so it wants a smaller α (about 5 instead of 10). Try it from the sidebar's method.",
        r"I^{\mathrm{LF}}_{i} = \frac{1}{B}\sum_{b=1}^{B}\left|\frac{\partial}{\partial \theta_i}\,"
        r"\frac{1}{|b|}\sum_{x\in b}\lVert f_\theta(x)\rVert_2^{2}\right|",
        "Find the smallest α on the slider that keeps retain accuracy (test) at or above 95% (where the original keeps "
        "less than 97%: at most 2 points below the original).",
        check_tradeoff, "alpha-sweep", controls=("alpha", "lambda"), needs=("lower",),
    ),
    Step(
        "collapse", "7 · When α = 10 breaks: automatic α",
        "The paper's α = 10 works on some requests and wrecks others: on the digits, forgetting class 3 at α = 10 "
        "takes retain accuracy from 99.7% to 34%. Why 10? $I_D$ is measured on mixed batches, where the gradients "
        "of the ten classes point different ways and partly cancel; on batches of the forget class alone they add "
        "up. With ten classes, a class is about a tenth of the data and a weight that *every* class uses already "
        "has $I_f/I_D$ near 10, so α = 10 selects the shared weights too. **Adaptive SSD** sets α from the forget "
        r"set's share of the data instead: the $(100-\ln(1+100\,|D_f|/|D|))$-th percentile of all ratios, so only "
        "the top ~2.4% of parameters for a tenth of the data. A **collapse guard** then checks retain accuracy on a "
        "sample of training images (never the test set) and, if it fell by more than 3 points, raises α to where the "
        "rest is kept and the forget set is still forgotten. The sweep shows the cliff: retain accuracy falls off "
        "below some α.",
        r"\alpha_{\mathrm{auto}} = \mathrm{percentile}_{\,100-\ln(1+100\,|D_f|/|D|)}\left\{\frac{I_{f,i}}{I_{D,i}}\right\}",
        "Forget the class (forget accuracy at most 5%) while keeping retain accuracy (test) within 3 points of the "
        "original. Try α = 10 by hand first, then switch Automatic α on.",
        check_collapse, "alpha-sweep", controls=("auto", "alpha", "lambda"),
    ),
    Step(
        "hiding", "8 · Hiding is not forgetting",
        "Forget accuracy 0% only says the *output* changed. Has the knowledge left the weights, or is it hidden "
        "behind a few dampened connections? One test: fine-tune the unlearned model on just $k = 10$ images of the "
        "forgotten class and count the steps until it recognises the class again (50% on its test images). Do the "
        "same with the **retrained** model, which never saw the class: that is how long real learning takes. A "
        "model that bounces back much faster was hiding the class. (The Audit page adds a linear probe on the "
        "features and a per-example membership attack.)",
        r"\text{relearned after } \min\{t : \mathrm{acc}_{D_f^{\mathrm{test}}}(\theta_t) \ge 50\%\},\quad "
        r"\theta_{t+1} = \theta_t - \eta\,\mathrm{Adam}\big(\nabla \mathcal{L}(\theta_t; 10 \text{ forget images})\big)",
        "Read the two curves, then pick the sentence they support.",
        check_hiding, "relearn", controls=("auto", "alpha"),
    ),
)
STEP_KEYS = tuple(s.key for s in STEPS)


def get_step(key: str) -> Step:
    return next(s for s in STEPS if s.key == key)


# ---------------------------------------------------------------------------------------------
# From the live run to a LessonState


def mean_beta(layers: Any) -> float | None:
    """Mean dampening factor over every selected parameter (None when nothing is selected)."""
    selected = sum(layer.selected for layer in layers)
    if not selected:
        return None
    return sum(layer.mean_factor * layer.selected for layer in layers) / selected


def lesson_state(prepared: Any, live: Any, ladder: tuple[float, ...], answer: Any = None, lower: Metrics | None = None,
                 higher: Metrics | None = None, relearn: tuple[int | None, int | None] | None = None,
                 auto: bool = False) -> LessonState:
    """The state the checks read, from a prepared run and its live result (ui.resources types); ``ladder``:
    the alpha slider's values (the neighbours a task compares with)."""
    lower_alpha, higher_alpha = neighbours(live.alpha, ladder)
    return LessonState(
        method=prepared.setup.method,
        request_kind=prepared.setup.request.kind,
        alpha=float(live.alpha),
        lam=float(live.lam),
        before=prepared.before.summary(),
        after=live.evaluation.summary(),
        fraction_selected=float(live.report.fraction_selected),
        mean_beta=mean_beta(live.report.layers),
        layer_medians={s.name: s.p50 for s in prepared.ratio_summaries if s.n_finite > 0 and not math.isnan(s.p50)},
        answer=answer,
        lower_alpha=lower_alpha,
        lower=lower,
        higher_alpha=higher_alpha,
        higher=higher,
        relearn_steps=relearn[0] if relearn else None,
        retrained_relearn_steps=relearn[1] if relearn else None,
        relearn_measured=relearn is not None,
        alpha_auto=auto,
    )


def with_answer(state: LessonState, answer: Any) -> LessonState:
    return replace(state, answer=answer)
