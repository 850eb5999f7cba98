"""The alpha/lambda landscape: a grid sweep over SSD's two knobs with cached importances.

Importances are computed once; each grid point costs one dampening and one evaluation pass, and
settings that give the same model share it. The evaluation can be bounded to a fixed, seeded
subsample of each subset (``max_eval_per_subset``, see :func:`default_eval_bound` for the
landscape's defaults); unbounded, the numbers equal :func:`ssd_core.metrics.evaluate` exactly.

The frontier treats each setting as a point (retain accuracy, forget accuracy): higher retain
and lower forget are better; Pareto points are those no other point beats on both.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .dampening import check_hyperparameters
from .data import ForgetSplit
from .engine import SSDEngine
from .errors import InputError
from .importance import ImportanceDict
from .metrics import Evaluation, Evaluator, to_channels_last
from .progress import OptionalProgress, report


@dataclass
class SweepPoint:
    alpha: float
    lam: float
    forget_test_acc: float | None
    retain_test_acc: float | None
    forget_train_acc: float | None
    retain_train_acc: float | None
    mia: float | None
    selected: int
    fraction_selected: float
    pareto: bool = False


@dataclass
class SweepResult:
    alphas: list[float]
    lams: list[float]
    points: list[SweepPoint]
    seconds: float
    complete: bool = True  # False when stopped early (time budget or cancel)
    eval_sizes: dict[str, int] = field(default_factory=dict)

    def grid(self, metric: str) -> list[list[float | None]]:
        """Values of ``metric`` as rows = lambda, columns = alpha (None where not computed)."""
        table: dict[tuple[float, float], float | None] = {(p.alpha, p.lam): getattr(p, metric) for p in self.points}
        return [[table.get((a, lam)) for a in self.alphas] for lam in self.lams]

    def pareto_points(self) -> list[SweepPoint]:
        return [p for p in self.points if p.pareto]

    def to_dict(self) -> dict:
        return {
            "alphas": self.alphas,
            "lams": self.lams,
            "points": [asdict(p) for p in self.points],
            "seconds": self.seconds,
            "complete": self.complete,
            "eval_sizes": self.eval_sizes,
        }


def log_grid(low: float, high: float, n: int) -> list[float]:
    """``n`` log-spaced values from ``low`` to ``high``, rounded to 3 significant digits."""
    if n < 1 or low <= 0 or high < low:
        raise InputError("A grid needs n >= 1 and 0 < low <= high.")
    values = np.geomspace(low, high, n) if n > 1 else np.array([low])
    return [float(f"{v:.3g}") for v in values]


MAX_GRID_POINTS = 2500  # settings in one sweep (the page offers at most its α ladder × 12 λ)
BIG_DATASET = 2000  # training images above which the landscape samples every subset
SMALL_EVAL_BOUND = 500  # below it, only subsets larger than this (retain-train on digits) are sampled
BIG_EVAL_BOUND = 250


def default_eval_bound(n_train: int) -> int:
    """The landscape's default images per subset. On digits (1,437 training images) only the
    retain-train subset is sampled: 500 of its 1,295 images, the members MIA's attack learns
    from; forget-train and both test subsets are evaluated whole, so the forget and retain-test
    heatmaps equal full single runs. That cuts a 10 x 10 grid from 4.7 s to 2.8 s on 2 quiet CPU
    cores (``bench/bench_sweep.py``). Bigger data samples every subset, 250 each."""
    return SMALL_EVAL_BOUND if n_train <= BIG_DATASET else BIG_EVAL_BOUND


def point_of(alpha: float, lam: float, report: Any, evaluation: Evaluation) -> SweepPoint:
    """A grid point from a dampening report and the dampened model's evaluation."""
    return SweepPoint(alpha=alpha, lam=lam, forget_test_acc=evaluation.forget_test_acc,
                      retain_test_acc=evaluation.retain_test_acc, forget_train_acc=evaluation.forget_train_acc,
                      retain_train_acc=evaluation.retain_train_acc, mia=evaluation.mia,
                      selected=report.total_selected, fraction_selected=report.fraction_selected)


class MemoEvaluator:
    """Evaluates each distinct model once.

    Different (alpha, lambda) often give bitwise the same model: nothing selected at a high alpha,
    or lambda >= I_f/I_D for every selected parameter (beta = 1 there); on digits about a quarter
    of a 10 x 10 grid. The key is a hash of every parameter's bytes, so reuse is exact."""

    reads_changed = True

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.cache: dict[str, Evaluation] = {}
        self.hits = 0

    @staticmethod
    def fingerprint(model: nn.Module) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for p in model.parameters():
            digest.update(p.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __call__(self, model: nn.Module, changed: Sequence[str] | None = None) -> Evaluation:
        key = self.fingerprint(model)
        if key in self.cache:
            self.hits += 1
        else:
            self.cache[key] = self.evaluator(model, changed)
        return self.cache[key]

    def sizes(self) -> dict[str, int]:
        return self.evaluator.sizes()


def mark_pareto(points: list[SweepPoint]) -> None:
    """Flag points not dominated on (higher retain_test_acc, lower forget accuracy)."""

    def coords(p: SweepPoint) -> tuple[float, float]:
        retain = p.retain_test_acc if p.retain_test_acc is not None else (p.retain_train_acc or 0.0)
        forget = p.forget_test_acc if p.forget_test_acc is not None else (p.forget_train_acc or 0.0)
        return retain, forget

    values = [coords(p) for p in points]
    for i, (r_i, f_i) in enumerate(values):
        dominated = any(
            (r_j >= r_i and f_j <= f_i) and (r_j > r_i or f_j < f_i) for j, (r_j, f_j) in enumerate(values) if j != i
        )
        points[i].pareto = not dominated


def sweep(
    model: nn.Module,
    full_importance: ImportanceDict,
    forget_importance: ImportanceDict,
    split: ForgetSplit,
    alphas: list[float],
    lams: list[float],
    *,
    device: torch.device | str = "cpu",
    max_eval_per_subset: int | None = None,
    time_budget_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: OptionalProgress = None,
    evaluator: Evaluator | MemoEvaluator | None = None,
) -> SweepResult:
    """Dampen and evaluate every (alpha, lambda); bounded by ``time_budget_s`` / ``should_stop``.

    Settings that give bitwise the same dampened model share one evaluation (:class:`MemoEvaluator`).

    Args:
        model: the original model (not modified).
        full_importance: I_D; forget_importance: I_f (computed once, reused for every setting).
        split: the forget split to evaluate on.
        alphas: selection thresholds; lams: dampening strengths (the grid is their product).
        device: where to dampen and evaluate.
        max_eval_per_subset: evaluate at most this many images per subset (None: all).
        time_budget_s: stop when this many seconds are spent (finished points are kept).
        should_stop: polled between points; True stops.
        progress: ``progress(fraction, message)`` callback.
        evaluator: reuse an evaluator (and its memo) across calls.

    Returns:
        The points computed, in grid order, with whether the grid was completed.
    """
    if not alphas or not lams:
        raise InputError("The sweep needs at least one alpha and one lambda.")
    if len(alphas) * len(lams) > MAX_GRID_POINTS:
        raise InputError(f"A sweep of {len(alphas):,} α × {len(lams):,} λ is {len(alphas) * len(lams):,} settings; "
                         f"at most {MAX_GRID_POINTS:,} are allowed (each is a dampening and an evaluation).")
    for a in alphas:
        for lam in lams:
            check_hyperparameters(a, lam)
    start = time.perf_counter()
    evaluator = evaluator or Evaluator(split, device, max_per_subset=max_eval_per_subset, shortcut_from=model)
    if not isinstance(evaluator, MemoEvaluator):
        evaluator = MemoEvaluator(evaluator)
    scratch = _scratch_copy(model)
    engine = SSDEngine(model, full_importance, forget_importance)
    points: list[SweepPoint] = []
    total = len(alphas) * len(lams)
    complete = True
    for a in alphas:  # one alpha column at a time: its settings share the first changed layer (see grid_order)
        for lam in lams:
            if (should_stop and should_stop()) or (time_budget_s is not None and time.perf_counter() - start > time_budget_s):
                complete = False
                break
            points.append(engine.point(a, lam, evaluator, into=scratch))
            report(progress, len(points) / total, f"alpha {a:g}, lambda {lam:g}")
        if not complete:
            break
    points = grid_order(points, lams)
    mark_pareto(points)
    return SweepResult(list(alphas), list(lams), points, time.perf_counter() - start, complete, evaluator.sizes())


def grid_order(points: list[SweepPoint], lams: Sequence[float]) -> list[SweepPoint]:
    """``points`` computed one alpha column at a time, in the grid's order (lambda rows, alpha within a row).

    Computing by column is faster: alpha alone decides which parameters are dampened, so the settings of one
    column share the first changed layer, and the evaluator's prefix shortcut (:mod:`ssd_core.prefix`) runs the
    layers before it once per column instead of once per setting (a 10 x 10 shapes sweep about 15% faster)."""
    row = {lam: i for i, lam in enumerate(lams)}
    return sorted(points, key=lambda p: row[p.lam])  # stable: alpha order is kept within a row


def _scratch_copy(model: nn.Module) -> nn.Module:
    """A private copy to dampen into, laid out for fast evaluation (see ``metrics.logits_of``)."""
    return to_channels_last(copy.deepcopy(model))


def suggest_alpha(
    model: nn.Module,
    full_importance: ImportanceDict,
    forget_importance: ImportanceDict,
    split: ForgetSplit,
    target_forget_acc: float,
    *,
    lam: float = 1.0,
    low: float = 0.1,
    high: float = 1000.0,
    steps: int = 14,
    device: torch.device | str = "cpu",
    evaluator: Evaluator | None = None,
) -> SweepPoint | None:
    """The gentlest setting (largest alpha, i.e. fewest parameters dampened) whose forget accuracy
    is at or below ``target_forget_acc``, found by bisection on log(alpha). None if even ``low``
    does not reach it. (Any smaller alpha also reaches the target, by dampening more.)
    """
    evaluator = evaluator or Evaluator(split, device)
    scratch = _scratch_copy(model)
    engine = SSDEngine(model, full_importance, forget_importance)

    def point(a: float) -> SweepPoint:
        return engine.point(a, lam, evaluator, into=scratch)

    def forget_of(p: SweepPoint) -> float:
        value = p.forget_test_acc if p.forget_test_acc is not None else p.forget_train_acc
        return math.inf if value is None else value

    best = point(low)
    if forget_of(best) > target_forget_acc:
        return None
    top = point(high)
    if forget_of(top) <= target_forget_acc:
        return top
    lo, hi = math.log(low), math.log(high)  # forget(lo) reaches the target, forget(hi) does not
    for _ in range(steps):
        mid = (lo + hi) / 2
        candidate = point(float(f"{math.exp(mid):.3g}"))
        if forget_of(candidate) <= target_forget_acc:
            lo, best = mid, candidate
        else:
            hi = mid
    return best


def closest_to_retrain(result: SweepResult, retrain_metrics: dict[str, float | None]) -> SweepPoint | None:
    """The grid point whose accuracies and MIA are closest (sum of absolute gaps) to the retrained model's."""
    keys = ("forget_test_acc", "retain_test_acc", "forget_train_acc", "retain_train_acc", "mia")
    best, best_gap = None, math.inf
    for p in result.points:
        gaps = [abs(getattr(p, k) - retrain_metrics[k]) for k in keys if getattr(p, k) is not None and retrain_metrics.get(k) is not None]
        if gaps and sum(gaps) < best_gap:
            best, best_gap = p, sum(gaps)
    return best
