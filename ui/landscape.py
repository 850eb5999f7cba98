"""The Landscape page's work: the alpha/lambda grid sweep (with cached importances), its figures,
turning a click on the frontier back into slider settings, the alpha suggestion, the retrained
reference; and the quick one-lambda alpha sweep (test-set logits only, no MIA).

The grid uses alphas from the slider's ladder (``ALPHA_VALUES``) and lambdas on the slider's step,
so a setting picked on the landscape is exactly a setting the live sliders can show.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from ssd_core.metrics import Evaluator
from ssd_core.progress import OptionalProgress, report, scaled
from ssd_core.sweep import (  # noqa: F401  (the page reads them from here)
    BIG_DATASET,
    MemoEvaluator,
    SweepPoint,
    SweepResult,
    closest_to_retrain,
    default_eval_bound,
    grid_order,
    log_grid,
    mark_pareto,
    point_of,
    suggest_alpha,
    sweep,
)
from unlearning_lab import figures

from . import resources
from . import state as lab_state
from .resources import Prepared
from .state import ALPHA_VALUES, LAMBDA_MAX, LAMBDA_MIN, clamp_lambda, snap_alpha

if TYPE_CHECKING:
    import pandas as pd


def alpha_sweep(prepared: Prepared, lam: float, progress: Callable[[float, str], None] | None = None) -> list[dict[str, Any]]:
    """One row per alpha of the slider's ladder: forget accuracy (test, or train when there are no
    forget test images), retain-test accuracy and the fraction dampened. Computed once per
    (prepared run, lambda) for the whole server (in the session for uploads): it depends on nothing else."""
    return resources.store_for(prepared.setup).get(
        "alpha_sweep", (prepared.key, float(lam)), lambda: _alpha_rows(prepared, lam, progress))


def _forget_subset(prepared: Prepared) -> str:
    """The forget images the α sweep reads: the forget set's test images, or its training images when it has none."""
    return "forget_test" if len(prepared.split.forget_test) > 0 else "forget_train"


def alpha_sweep_evaluator(prepared: Prepared) -> MemoEvaluator:
    """What the α sweep reads: the test images the cards read (every one on small data, the cards' own fixed,
    stratified sample on large data, so the sweep's point at the cards' α is the cards' numbers), skipping the
    layers before the first changed one, and evaluating each distinct model once (a high α selects nothing)."""
    return MemoEvaluator(grid_evaluator(prepared, prepared.live_sample, subsets=(_forget_subset(prepared), "retain_test"),
                                        with_mia=False))


def alpha_sweep_images(prepared: Prepared) -> str:
    """Which images the α sweep reads, in words (for the caption under its figure)."""
    forget = _forget_subset(prepared)
    if prepared.live_sample is None:
        return "every test image" if forget == "forget_test" else "every forget-set training image and every test image"
    sizes = prepared.live_evaluator.sizes()  # the same sample as alpha_sweep_evaluator's
    where = "test images of the forget set" if forget == "forget_test" else "forget-set training images"
    return f"the cards' fixed sample: {sizes[forget]:,} {where} and {sizes['retain_test']:,} test images of the rest"


def _alpha_rows(prepared: Prepared, lam: float, progress: Callable[[float, str], None] | None) -> list[dict[str, Any]]:
    use_test = _forget_subset(prepared) == "forget_test"
    evaluator = alpha_sweep_evaluator(prepared)
    scratch = resources.scratch_model(prepared)
    rows = []
    for i, alpha in enumerate(ALPHA_VALUES):
        if progress is not None:
            progress(i / len(ALPHA_VALUES), f"α = {alpha:g}")
        model, report = resources.engine(prepared).at(alpha, lam, into=scratch)
        evaluation = evaluator(model, report.changed)
        rows.append({
            "alpha": alpha,
            "forget_acc": evaluation.forget_test_acc if use_test else evaluation.forget_train_acc,
            "retain_acc": evaluation.retain_test_acc,
            "fraction_dampened": report.fraction_selected,
            "dampened": report.total_selected,
            "forget_split": "test" if use_test else "train",
        })
    if progress is not None:
        progress(1.0, "done")
    return rows


def recommend_alpha(prepared: Prepared, rows: list[dict[str, Any]], tolerance: float = 0.02) -> dict[str, Any] | None:
    """Among alphas keeping retain-test accuracy within ``tolerance`` of the original, the lowest
    forget accuracy; ties go to the highest alpha (fewest parameters touched)."""
    reference = prepared.before.retain_test_acc  # the original on the images the rows read
    if reference is None:
        return None
    ok = [r for r in rows if r["retain_acc"] is not None and r["forget_acc"] is not None
          and r["retain_acc"] >= reference - tolerance]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["forget_acc"], -r["alpha"]))


def sweep_figure(prepared: Prepared, rows: list[dict[str, Any]], current_alpha: float | None) -> Any:
    forget_split = rows[0]["forget_split"] if rows else "test"
    return figures.alpha_sweep_figure(
        [r["alpha"] for r in rows], [r["forget_acc"] for r in rows], [r["retain_acc"] for r in rows],
        [r["fraction_dampened"] for r in rows], current_alpha, forget_label=f"forget ({forget_split})",
    )


def sweep_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.assign(
        forget_acc=(100 * frame["forget_acc"].astype(float)).round(1),
        retain_acc=(100 * frame["retain_acc"].astype(float)).round(1),
        fraction_dampened=(100 * frame["fraction_dampened"]).round(2),
    )
    return frame.rename(columns={"alpha": "α", "forget_acc": "forget acc. (%)", "retain_acc": "retain-test acc. (%)",
                                 "fraction_dampened": "dampened (%)", "dampened": "dampened (count)",
                                 "forget_split": "forget split"})


# ---------------------------------------------------------------------------------------------
# The alpha/lambda landscape

K_LANDSCAPE = "_landscape"
K_BOUND_FOR = "_ls_bound_for"  # the dataset the kept evaluation bound was chosen for
K_PICK = "ls_pick"
K_TARGET = "ls_target"
LAMBDA_LADDER = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0]


@dataclass(frozen=True)
class GridForm:
    """The landscape page's grid form: its own controls (not part of the run setup), kept per session
    under ``ls_<field>``. ``eval_bound`` of None means the dataset's default bound."""

    alpha_lo: float = 1.0
    alpha_hi: float = 100.0
    n_alpha: int = 10
    lam_lo: float = 0.1
    lam_hi: float = 5.0
    n_lam: int = 6
    budget: int = 60
    eval_bound: int | None = None

    @staticmethod
    def key(field: str) -> str:
        return f"ls_{field}"

    @classmethod
    def keys(cls) -> list[str]:
        return [cls.key(f.name) for f in dataclasses.fields(cls)]

    @classmethod
    def widget_kwargs(cls, eval_bound_default: int) -> dict[str, dict[str, Any]]:
        """Per field, the kwargs that bind its widget to the kept value (inside a form)."""
        defaults = {**dataclasses.asdict(cls()), "eval_bound": eval_bound_default}
        return {name: lab_state.keep(cls.key(name), default, in_form=True) for name, default in defaults.items()}

    @classmethod
    def kept(cls, eval_bound_default: int) -> GridForm:
        defaults = {**dataclasses.asdict(cls()), "eval_bound": eval_bound_default}
        return cls(**{name: lab_state.kept(cls.key(name), default) for name, default in defaults.items()})

    @staticmethod
    def reset_bound_for(dataset: str, bound_default: int) -> None:
        """A new dataset gets its own default evaluation bound."""
        if lab_state.kept(K_BOUND_FOR) != dataset:
            lab_state.set_kept(GridForm.key("eval_bound"), bound_default)
            lab_state.set_kept(K_BOUND_FOR, dataset)

    def grid(self, anchor_alpha: float) -> tuple[list[float], list[float], int | None]:
        """The alphas, lambdas and evaluation bound (None: everything) this form asks for."""
        lo, hi = sorted((float(self.alpha_lo), float(self.alpha_hi)))
        anchor = min(ALPHA_VALUES, key=lambda a: abs(a - anchor_alpha))
        lam_lo, lam_hi = sorted((float(self.lam_lo), float(self.lam_hi)))
        return (alpha_grid(lo, hi, int(self.n_alpha), anchor=anchor),
                lambda_grid(lam_lo, lam_hi, int(self.n_lam)), int(self.eval_bound or 0) or None)


K_APPLIED_SETTING = "_landscape_applied"
METRICS = {  # heatmaps: metric -> (label, better, note)
    "forget": ("Forget accuracy", "low", None),
    "retain_test_acc": ("Retain accuracy (test)", "high", None),
    "mia": ("MIA", "low", "forget samples called members"),
}


def alpha_grid(low: float, high: float, n: int, anchor: float | None = 10.0) -> list[float]:
    """``n`` alphas from the slider's log-spaced ladder between ``low`` and ``high``, spread evenly
    over the ladder (all of them when the range holds fewer). ``anchor`` (the paper's alpha) is
    always on the grid when it lies in the range: it replaces the nearest picked value."""
    ladder = [a for a in ALPHA_VALUES if low - 1e-12 <= a <= high + 1e-12]
    if not ladder:
        return [snap_alpha(low)]
    if n >= len(ladder):
        return ladder
    if n <= 1:
        return [anchor if anchor in ladder else ladder[len(ladder) // 2]]
    picked = sorted({ladder[int(round(i))] for i in np.linspace(0, len(ladder) - 1, n)})
    if anchor is not None and anchor in ladder and anchor not in picked:
        inner = picked[1:-1] or picked
        nearest = min(inner, key=lambda a: abs(math.log(a) - math.log(anchor)))
        picked = sorted(set(picked) - {nearest} | {anchor})
    return picked


def lambda_grid(low: float, high: float, n: int) -> list[float]:
    """``n`` log-spaced lambdas on the slider's 0.01 step (duplicates after rounding dropped; when the
    range spans 1, the inner value nearest to it is exactly 1, the paper's default)."""
    low, high = max(LAMBDA_MIN, low), min(LAMBDA_MAX, high)
    values = log_grid(low, high, max(1, n)) if high > low else [low]
    if n > 2 and low < 1.0 < high:  # the paper's lambda = 1 on the grid: snap the nearest inner value to it
        inner = range(1, len(values) - 1)
        nearest = min(inner, key=lambda i: abs(math.log(values[i])), default=None)
        if nearest is not None:
            values[nearest] = 1.0
    out: list[float] = []
    for v in values:
        r = float(min(max(round(v, 2), LAMBDA_MIN), LAMBDA_MAX))
        if r not in out:
            out.append(r)
    return out


def eval_bound_default(prepared: Prepared) -> int:
    """The page's default images per subset: on data where the Unlearn page's cards read a fixed
    sample (:func:`ssd_core.metrics.live_sample_size`), that sample, so a cell and the cards agree at
    the same setting; else :func:`default_eval_bound` (on the digits, 500 of retain-train)."""
    return prepared.live_sample or default_eval_bound(len(prepared.dataset.train_y))


def run_landscape(
    prepared: Prepared,
    alphas: Sequence[float],
    lams: Sequence[float],
    *,
    max_eval_per_subset: int | None = None,
    time_budget_s: float | None = None,
    progress: OptionalProgress = None,
    on_column: Callable[[SweepResult], None] | None = None,
) -> tuple[SweepResult, int]:
    """The grid sweep with the prepared (cached) importances, one alpha column at a time (so a
    stopped sweep keeps its finished columns: ``on_column`` gets the partial result after each column;
    columns are faster than rows, see :func:`ssd_core.sweep.grid_order`). Returns the result (Pareto
    points marked over the whole grid) and how many settings reused an identical model's evaluation."""
    evaluator = MemoEvaluator(grid_evaluator(prepared, max_eval_per_subset))
    start = time.perf_counter()
    points: list[SweepPoint] = []
    complete = True
    for i, alpha in enumerate(alphas):
        remaining = None if time_budget_s is None else time_budget_s - (time.perf_counter() - start)
        if remaining is not None and remaining <= 0:
            complete = False
            break
        column = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split, [alpha],
                       list(lams), device=prepared.device, time_budget_s=remaining, evaluator=evaluator,
                       progress=scaled(progress, i / len(alphas), (i + 1) / len(alphas)))
        points = grid_order(points + column.points, lams)
        if not column.complete:
            complete = False
        if on_column is not None or not complete:
            mark_pareto(points)
            partial = SweepResult(list(alphas), list(lams), list(points), time.perf_counter() - start,
                                  complete and i == len(alphas) - 1, evaluator.sizes())
            if on_column is not None:
                on_column(partial)
        if not complete:
            break
    mark_pareto(points)
    report(progress, 1.0, f"{len(points)} settings")
    return (SweepResult(list(alphas), list(lams), points, time.perf_counter() - start, complete, evaluator.sizes()),
            evaluator.hits)


def finished_landscape(prepared: Prepared, key: tuple) -> tuple[SweepResult, int] | None:
    """A complete sweep of exactly this grid (``key``: run, alphas, lambdas, bound) that this server ran before, for
    any session (an upload's only in its own): a classroom asking for the same grid computes it once."""
    return resources.store_for(prepared.setup).peek("landscape", key)


def keep_landscape(prepared: Prepared, key: tuple, result: SweepResult, hits: int) -> None:
    """Keep a complete sweep for :func:`finished_landscape` (a stopped one is this session's only)."""
    if result.complete:
        resources.store_for(prepared.setup).get("landscape", key, lambda: (result, hits))


def forget_value(point: SweepPoint) -> float | None:
    """Forget accuracy of a point: on test images, or on the forget set itself when there are none."""
    return point.forget_test_acc if point.forget_test_acc is not None else point.forget_train_acc


def retain_value(point: SweepPoint) -> float | None:
    return point.retain_test_acc if point.retain_test_acc is not None else point.retain_train_acc


def forget_split(result: SweepResult) -> str:
    return "test" if any(p.forget_test_acc is not None for p in result.points) else "train"


def metric_grid(result: SweepResult, metric: str) -> list[list[float | None]]:
    """Rows = lambda, columns = alpha; ``metric`` "forget" picks the forget split that exists."""
    if metric == "forget":
        metric = "forget_test_acc" if forget_split(result) == "test" else "forget_train_acc"
    return result.grid(metric)


def heatmap_figures(result: SweepResult, current: tuple[float, float] | None, theme: str = "default") -> dict[str, Any]:
    pareto = [(p.alpha, p.lam) for p in result.pareto_points()]
    out = {}
    for metric, (label, better, note) in METRICS.items():
        if metric == "forget":
            label = f"Forget accuracy ({forget_split(result)})"
        out[metric] = figures.landscape_heatmap_figure(result.alphas, result.lams, metric_grid(result, metric), label,
                                                       better=better, current=current, pareto=pareto, note=note,
                                                       theme=theme)
    return out


def preview_figure(result: SweepResult, theme: str = "default") -> Any:
    """The forget-accuracy heatmap of a sweep still running: its finished α columns, the rest blank
    (Pareto rings wait for the whole grid, which can change them)."""
    label, better, note = METRICS["forget"]
    return figures.landscape_heatmap_figure(result.alphas, result.lams, metric_grid(result, "forget"),
                                            f"{label} ({forget_split(result)}), so far", better=better, note=note,
                                            theme=theme)


def frontier_points(result: SweepResult) -> list[figures.FrontierPoint]:
    return [figures.FrontierPoint(p.alpha, p.lam, float(retain_value(p) or 0.0), float(forget_value(p) or 0.0), p.mia,
                                  p.fraction_selected, p.pareto) for p in result.points]


def frontier_figure(result: SweepResult, prepared: Prepared, current: tuple[float, float] | None,
                    retrained: Mapping[str, float | None] | None = None, theme: str = "default") -> Any:
    b = prepared.before_eval
    split_name = forget_split(result)
    original = (b.retain_test_acc if b.retain_test_acc is not None else b.retain_train_acc,
                b.forget_test_acc if split_name == "test" else b.forget_train_acc)
    ref: tuple[float | None, float | None] = (None, None)
    if retrained:
        ref = (retrained.get("retain_test_acc") if retrained.get("retain_test_acc") is not None else retrained.get("retain_train_acc"),
               retrained.get("forget_test_acc") if split_name == "test" else retrained.get("forget_train_acc"))
    return figures.tradeoff_frontier_figure(
        frontier_points(result), original=_both(original), retrained=_both(ref), current=current,
        forget_label=f"forget ({split_name}) accuracy", theme=theme,
    )


def pick_from_selection(selection: Mapping[str, Any] | None, result: SweepResult) -> SweepPoint | None:
    """The setting a click or box selection on the frontier stands for: of the selected grid
    points, a Pareto one first, then the best retain-minus-forget, then the larger alpha (gentler)."""
    if not selection:
        return None
    by_setting = {(p.alpha, p.lam): p for p in result.points}
    chosen: list[SweepPoint] = []
    for item in selection.get("points", []) or []:
        data = item.get("customdata")
        if not data or len(data) < 2:
            continue
        point = by_setting.get((float(data[0]), float(data[1])))
        if point is not None and point not in chosen:
            chosen.append(point)
    if not chosen:
        return None
    return max(chosen, key=lambda p: (p.pareto, (retain_value(p) or 0.0) - (forget_value(p) or 0.0), p.alpha))


def apply_setting(alpha: float, lam: float) -> None:
    """Callback: set the session's alpha and lambda (the live sliders on every page follow)."""
    lab_state.update(alpha=float(alpha), lam=clamp_lambda(lam), alpha_auto=False)
    st.session_state[K_APPLIED_SETTING] = (float(alpha), clamp_lambda(lam))


def _both(pair: tuple[float | None, float | None]) -> tuple[float, float] | None:
    """The pair when both values are known, else None (a point that cannot be placed)."""
    return (pair[0], pair[1]) if pair[0] is not None and pair[1] is not None else None


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def point_table(points: Sequence[SweepPoint]) -> pd.DataFrame:
    rows = [{
        "α": p.alpha, "λ": p.lam,
        "forget acc. (%)": _percent(forget_value(p)),
        "retain-test acc. (%)": None if p.retain_test_acc is None else round(100 * p.retain_test_acc, 1),
        "MIA (%)": None if p.mia is None else round(100 * p.mia, 1),
        "dampened (%)": round(100 * p.fraction_selected, 3),
        "Pareto": p.pareto,
    } for p in points]
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Suggesting alpha, and the retrained reference


@dataclass
class Suggestion:
    target: float
    lam: float
    point: SweepPoint | None  # suggest_alpha's answer (alpha rounded to 3 digits)
    ladder_alpha: float | None = None  # the largest slider alpha at or below it
    ladder_point: SweepPoint | None = None  # that setting, evaluated


def grid_evaluator(prepared: Prepared, max_eval_per_subset: int | None, **only: Any) -> Evaluator:
    """The images the Landscape reads at a bound, the same for its grid, its suggestion, the retrained model and the
    sweep along α, so they compare on one set: at the cards' bound the cards' class-stratified sample, at another
    bound a seeded sample of that size, None every image. The layers before a setting's first change are not
    recomputed. ``only``: Evaluator's ``subsets`` and ``with_mia``, to read fewer of them."""
    cards_sample = max_eval_per_subset is not None and max_eval_per_subset == prepared.live_sample
    return Evaluator(prepared.split, prepared.device, max_per_subset=max_eval_per_subset, seed=prepared.setup.seed,
                     stratified=cards_sample, shortcut_from=prepared.model, **only)


def _evaluate_setting(prepared: Prepared, alpha: float, lam: float, evaluator: Evaluator) -> SweepPoint:
    return resources.engine(prepared).point(alpha, lam, evaluator)


def suggest(prepared: Prepared, target_forget_acc: float, lam: float, max_eval_per_subset: int | None = None) -> Suggestion:
    """The gentlest alpha (fewest parameters dampened) whose forget accuracy reaches the target, by
    bisection (``ssd_core.sweep.suggest_alpha``) over the slider's range; then the slider value at
    or just below it (lower alpha dampens more, so it reaches the target too), evaluated."""
    evaluator = grid_evaluator(prepared, max_eval_per_subset)
    point = suggest_alpha(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                          target_forget_acc, lam=lam, low=ALPHA_VALUES[0], high=ALPHA_VALUES[-1],
                          device=prepared.device, evaluator=evaluator)
    result = Suggestion(target_forget_acc, lam, point)
    if point is not None:
        below = [a for a in ALPHA_VALUES if a <= point.alpha + 1e-12]
        result.ladder_alpha = below[-1] if below else ALPHA_VALUES[0]
        result.ladder_point = _evaluate_setting(prepared, result.ladder_alpha, lam, evaluator)
    return result


def retrain_available() -> bool:
    from ssd_core.methods import available_methods

    return "retrain" in available_methods()


def retrain_reference(prepared: Prepared, max_eval_per_subset: int | None = None,
                      progress: OptionalProgress = None) -> dict[str, Any]:
    """Metrics of a model retrained from scratch on the retain set (``run_method("retrain")``),
    evaluated like the landscape; kept per run setup where its results are kept (resources.store_for)."""
    from ssd_core.methods import run_method

    key = (prepared.key, max_eval_per_subset)

    def build() -> dict[str, Any]:
        start = time.perf_counter()
        result = run_method("retrain", prepared.model, prepared.split, device=prepared.device, progress=progress,
                            seed=prepared.setup.seed)
        evaluator = grid_evaluator(prepared, max_eval_per_subset)  # another model: every layer runs (no `changed`)
        metrics = {k: v for k, v in evaluator(result.model).summary().items() if k not in ("test_acc", "zrf")}
        return {**metrics, "seconds": time.perf_counter() - start}

    return resources.store_for(prepared.setup).get("retrain", key, build)


def closest_setting(result: SweepResult, retrained: Mapping[str, Any]) -> SweepPoint | None:
    return closest_to_retrain(result, {k: v for k, v in retrained.items() if k != "seconds"})
