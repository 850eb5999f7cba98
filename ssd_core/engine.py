"""SSD on one model with its importances already computed: the one object callers outside the library
(the dashboard) dampen, evaluate and choose automatic alpha through, so they never run SSD's steps
themselves and cannot drift from the CLI's ``ssd``/``assd``.

It holds references only (model, I_D, I_f): building one costs nothing, so callers create it where they
need it instead of caching it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .dampening import DampeningReport, dampen
from .guard import AutoSetting, CollapseGuard, GuardCheck, auto_setting
from .importance import ImportanceDict
from .metrics import Evaluation

if TYPE_CHECKING:  # ssd_core.sweep runs its grid through this engine
    from .data import ForgetSplit
    from .sweep import SweepPoint, SweepResult


class SSDEngine:
    """Selective Synaptic Dampening of ``model`` with the cached importances ``full`` (I_D) and ``forget`` (I_f)."""

    def __init__(self, model: nn.Module, full: ImportanceDict, forget: ImportanceDict) -> None:
        self.model = model
        self.full = full
        self.forget = forget

    def at(self, alpha: float, lam: float, *, into: nn.Module | None = None,
           with_statistics: bool = False) -> tuple[nn.Module, DampeningReport]:
        """The model dampened at (alpha, lambda) (into ``into`` when given; the original is never
        modified) and the per-layer report."""
        return dampen(self.model, self.full, self.forget, alpha, lam, with_statistics=with_statistics, into=into)

    def point(self, alpha: float, lam: float, evaluator: Callable[[nn.Module], Evaluation], *, into: nn.Module | None = None) -> SweepPoint:
        """One landscape point: dampen at (alpha, lambda) and evaluate with ``evaluator`` (told which parameters
        changed when it can use that: :class:`ssd_core.metrics.Evaluator`, ``MemoEvaluator``)."""
        from .sweep import point_of

        model, report = self.at(alpha, lam, into=into)
        if getattr(evaluator, "reads_changed", False):
            return point_of(alpha, lam, report, evaluator(model, report.changed))  # type: ignore[call-arg]
        return point_of(alpha, lam, report, evaluator(model))

    def sweep(self, split: ForgetSplit, alphas: list[float], lams: list[float], **options: Any) -> SweepResult:
        """The (alpha, lambda) grid evaluated on ``split``; ``options`` as :func:`ssd_core.sweep.sweep`."""
        from .sweep import sweep

        return sweep(self.model, self.full, self.forget, split, alphas, lams, **options)

    def auto(self, guard: CollapseGuard | None, n_forget: int, n_total: int, lam: float, *, apply_fix: bool = True,
             ratios: torch.Tensor | None = None,
             check_at: Callable[[float], GuardCheck] | None = None) -> AutoSetting:
        """Automatic alpha (adaptive SSD checked and corrected by the collapse guard), what the ``assd``
        method and the dashboard's "Automatic α" both use; see :func:`ssd_core.guard.auto_setting`."""
        return auto_setting(self.model, self.full, self.forget, guard, n_forget, n_total, lam, apply_fix=apply_fix,
                            ratios=ratios, check_at=check_at)
