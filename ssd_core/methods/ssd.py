"""Selective Synaptic Dampening (SSD) and its loss-free variant (LFSSD).

Both compute I_D (full training data, cached per model/data/estimator/batch size) and I_f (the
forget set), then dampen (see :mod:`ssd_core.dampening`). They differ only in the estimator:
SSD uses the batch-squared Fisher diagonal, LFSSD the |gradient| of the squared logit norm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from ..dampening import check_hyperparameters, dampen
from ..data import ForgetSplit
from ..importance import ImportanceCache, ImportanceDict, compute_importance, default_cache
from ..progress import OptionalProgress, report, scaled
from .base import FULL_DATA_CACHED, MethodOutcome, MethodSpec, param, register_method
from .runner import MethodData


@dataclass
class SSDConfig:
    """SSD: selection threshold alpha, dampening strength lambda and the importance estimator."""

    alpha: float = param(10.0, "selection threshold: dampen where I_f > alpha * I_D", min=1e-6, max=1e6, log=True)
    lam: float = param(1.0, "dampening strength lambda: beta = min(lambda * I_D / I_f, 1)", min=0.0, max=1e6)
    estimator: str = param("fisher", "importance estimator", choices=("fisher", "fisher_exact"))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)


@dataclass
class LFSSDConfig:
    """LFSSD: SSD with the loss-free importance (no labels needed)."""

    alpha: float = param(5.0, "selection threshold (smaller than SSD's)", min=1e-6, max=1e6, log=True)
    lam: float = param(1.0, "dampening strength lambda", min=0.0, max=1e6)
    estimator: str = param("lossfree", "importance estimator (label-free)", choices=("lossfree",))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)


@dataclass
class SSDImportances:
    """I_D and I_f for one model and split, plus how long each took."""

    full: ImportanceDict
    forget: ImportanceDict
    full_seconds: float
    forget_seconds: float
    full_cached: bool


def ssd_importances(
    model: nn.Module,
    split: ForgetSplit | MethodData,
    estimator: str = "fisher",
    batch_size: int = 64,
    *,
    device: torch.device | str = "cpu",
    cache: ImportanceCache | None = None,
    model_key: str | None = None,
    progress: OptionalProgress = None,
) -> SSDImportances:
    """I_D over the whole training set (from the cache when possible) and I_f over forget-train.

    Args:
        model: the original model (not modified).
        split: the forget split (or the method data the runner hands SSD).
        estimator: "fisher", "fisher_exact" or "lossfree".
        batch_size: importance batch size (the batch Fisher depends on it).
        device: where to compute.
        cache: the I_D cache (default: memory and disk, see :func:`~ssd_core.importance.default_cache`).
        model_key: the model's fingerprint when known (saves hashing it).
        progress: ``progress(fraction, message)`` callback.

    Returns:
        Both importances and how long each took.
    """
    cache = cache or default_cache()
    misses = cache.misses
    start = time.perf_counter()
    data_key = split.data_key if isinstance(split, MethodData) else f"{split.dataset.fingerprint()}-train"
    full = cache.full_importance(
        model,
        split.train,
        data_key=data_key,
        estimator=estimator,
        batch_size=batch_size,
        device=device,
        progress=scaled(progress, 0.0, 0.8),
        model_key=model_key,
    )
    full_seconds = time.perf_counter() - start
    start = time.perf_counter()
    forget = compute_importance(model, split.forget_train, estimator, batch_size, device, scaled(progress, 0.8, 1.0))
    return SSDImportances(full, forget, full_seconds, time.perf_counter() - start, cache.misses == misses)


def _run(work: nn.Module, data: MethodData, config, *, device: torch.device, progress: OptionalProgress = None) -> MethodOutcome:
    check_hyperparameters(config.alpha, config.lam)
    importances = ssd_importances(work, data, config.estimator, config.batch_size, device=device,
                                  progress=scaled(progress, 0, 0.95))
    start = time.perf_counter()
    new_model, dampening_report = dampen(work, importances.full, importances.forget, config.alpha, config.lam)
    dampen_seconds = time.perf_counter() - start
    report(progress, 1.0, f"dampened {dampening_report.total_selected} parameters")
    return MethodOutcome(
        new_model,
        {"report": dampening_report, "full_importance_cached": importances.full_cached},
        {"importance_full": importances.full_seconds, "importance_forget": importances.forget_seconds,
         "dampening": dampen_seconds},
    )


register_method(
    MethodSpec(
        "ssd",
        "Selective Synaptic Dampening: shrink parameters far more important to the forget set than to the full data.",
        SSDConfig,
        _run,
        data_touched=FULL_DATA_CACHED,
    )
)
register_method(
    MethodSpec(
        "lfssd",
        "Loss-free SSD: like SSD, but importance from the logit norm, so no labels are needed.",
        LFSSDConfig,
        _run,
        data_touched=FULL_DATA_CACHED,
    )
)
