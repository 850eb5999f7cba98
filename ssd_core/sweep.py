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
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .dampening import check_hyperparameters, dampen
from .data import ForgetSplit, Subset
from .errors import InputError
from .importance import ImportanceDict
from .metrics import entropy, logits_of, mia_from_entropies, to_channels_last
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


def _subsample(subset: Subset, limit: int | None, seed: int) -> torch.Tensor:
    """Positions (into the split's full tensors) of at most ``limit`` members of ``subset``."""
    indices = subset.indices
    if limit is None or len(indices) <= limit:
        return indices
    generator = torch.Generator().manual_seed(seed)
    return indices[torch.randperm(len(indices), generator=generator)[:limit].sort().values]


class SplitEvaluator:
    """Evaluates many models on the same (possibly subsampled) split with one forward pass each."""

    def __init__(self, split: ForgetSplit, device: torch.device | str, max_per_subset: int | None = None, seed: int = 0):
        ds = split.dataset
        self.device = device
        self.forget_train = _subsample(split.forget_train, max_per_subset, seed)
        self.retain_train = _subsample(split.retain_train, max_per_subset, seed + 1)
        self.forget_test = _subsample(split.forget_test, max_per_subset, seed + 2)
        self.retain_test = _subsample(split.retain_test, max_per_subset, seed + 3)
        full = max_per_subset is None
        # Evaluate on the union (in the split's order, so full evaluation matches metrics.evaluate).
        self.train_index = torch.arange(len(ds.train_y)) if full else torch.cat([self.retain_train, self.forget_train]).sort().values
        self.test_index = torch.arange(len(ds.test_y)) if full else torch.cat([self.retain_test, self.forget_test]).sort().values
        self.train = Subset(ds.train_x[self.train_index], ds.train_y[self.train_index], self.train_index)
        self.test = Subset(ds.test_x[self.test_index], ds.test_y[self.test_index], self.test_index)
        self._train_pos = self._positions(self.train_index, len(ds.train_y))
        self._test_pos = self._positions(self.test_index, len(ds.test_y))

    @staticmethod
    def _positions(index: torch.Tensor, size: int) -> torch.Tensor:
        positions = torch.full((size,), -1, dtype=torch.long)
        positions[index] = torch.arange(len(index))
        return positions

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("forget_train", "retain_train", "forget_test", "retain_test")}

    def __call__(self, model: nn.Module) -> dict[str, float | None]:
        train_logits = logits_of(model, self.train, self.device)
        test_logits = logits_of(model, self.test, self.device)

        def acc(logits: torch.Tensor, labels: torch.Tensor, which: torch.Tensor, pos: torch.Tensor) -> float | None:
            if len(which) == 0:
                return None
            rows = pos[which]
            return int((logits[rows].argmax(1) == labels[rows]).sum()) / len(which)

        train_entropy = entropy(train_logits)
        return {
            "forget_test_acc": acc(test_logits, self.test.y, self.forget_test, self._test_pos),
            "retain_test_acc": acc(test_logits, self.test.y, self.retain_test, self._test_pos),
            "forget_train_acc": acc(train_logits, self.train.y, self.forget_train, self._train_pos),
            "retain_train_acc": acc(train_logits, self.train.y, self.retain_train, self._train_pos),
            "mia": mia_from_entropies(
                train_entropy[self._train_pos[self.retain_train]],
                entropy(test_logits),
                train_entropy[self._train_pos[self.forget_train]],
            ),
        }


class MemoEvaluator:
    """Evaluates each distinct model once.

    Different (alpha, lambda) often give bitwise the same model: nothing selected at a high alpha,
    or lambda >= I_f/I_D for every selected parameter (beta = 1 there); on digits about a quarter
    of a 10 x 10 grid. The key is a hash of every parameter's bytes, so reuse is exact."""

    def __init__(self, evaluator: SplitEvaluator) -> None:
        self.evaluator = evaluator
        self.cache: dict[str, dict[str, float | None]] = {}
        self.hits = 0

    @staticmethod
    def fingerprint(model: nn.Module) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for p in model.parameters():
            digest.update(p.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __call__(self, model: nn.Module) -> dict[str, float | None]:
        key = self.fingerprint(model)
        if key in self.cache:
            self.hits += 1
        else:
            self.cache[key] = self.evaluator(model)
        return dict(self.cache[key])

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
    evaluator: SplitEvaluator | MemoEvaluator | None = None,
) -> SweepResult:
    """Dampen and evaluate every (alpha, lambda); bounded by ``time_budget_s`` / ``should_stop``.

    Settings that give bitwise the same dampened model share one evaluation (:class:`MemoEvaluator`)."""
    if not alphas or not lams:
        raise InputError("The sweep needs at least one alpha and one lambda.")
    for a in alphas:
        for lam in lams:
            check_hyperparameters(a, lam)
    start = time.perf_counter()
    evaluator = evaluator or SplitEvaluator(split, device, max_eval_per_subset)
    if not isinstance(evaluator, MemoEvaluator):
        evaluator = MemoEvaluator(evaluator)
    scratch = _scratch_copy(model)
    points: list[SweepPoint] = []
    total = len(alphas) * len(lams)
    complete = True
    for lam in lams:
        for a in alphas:
            if (should_stop and should_stop()) or (time_budget_s is not None and time.perf_counter() - start > time_budget_s):
                complete = False
                break
            damped, rep = dampen(model, full_importance, forget_importance, a, lam, into=scratch, with_statistics=False)
            points.append(SweepPoint(alpha=a, lam=lam, selected=rep.total_selected, fraction_selected=rep.fraction_selected, **evaluator(damped)))
            report(progress, len(points) / total, f"alpha {a:g}, lambda {lam:g}")
        if not complete:
            break
    mark_pareto(points)
    return SweepResult(list(alphas), list(lams), points, time.perf_counter() - start, complete, evaluator.sizes())


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
    evaluator: SplitEvaluator | None = None,
) -> SweepPoint | None:
    """The gentlest setting (largest alpha, i.e. fewest parameters dampened) whose forget accuracy
    is at or below ``target_forget_acc``, found by bisection on log(alpha). None if even ``low``
    does not reach it. (Any smaller alpha also reaches the target, by dampening more.)
    """
    evaluator = evaluator or SplitEvaluator(split, device)
    scratch = _scratch_copy(model)

    def point(a: float) -> SweepPoint:
        damped, rep = dampen(model, full_importance, forget_importance, a, lam, into=scratch, with_statistics=False)
        return SweepPoint(alpha=a, lam=lam, selected=rep.total_selected, fraction_selected=rep.fraction_selected, **evaluator(damped))

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
