"""Selective Synaptic Dampening (SSD), its loss-free variant (LFSSD) and their adaptive forms.

All compute I_D (full training data, cached per model/data/estimator/batch size) and I_f (the
forget set), then dampen (see :mod:`ssd_core.dampening`). SSD uses the batch-squared Fisher
diagonal, LFSSD the |gradient| of the squared logit norm.

``assd`` / ``alfssd`` (adaptive SSD, Schoepf, Foster, Brintrup 2024) set alpha from the data:
the (100 - ln(1 + 100 |Df| / |D|))-th percentile of the finite ratios I_f / I_D.

Every variant runs the collapse guard (:mod:`ssd_core.guard`) on a retain-train sample: ``warn``
(ssd, lfssd) records the check and the alpha that would keep the retained classes; ``fix`` (assd,
alfssd: what "auto" means) also uses that alpha when the check fires; ``off`` skips it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..dampening import check_hyperparameters
from ..data import ForgetSplit
from ..engine import SSDEngine
from ..guard import RETAIN_DROP, CollapseGuard
from ..importance import ImportanceCache, ImportanceDict, default_cache
from ..progress import OptionalProgress, report, scaled
from .base import FULL_DATA_CACHED, MethodOutcome, MethodSpec, param, register_method
from .runner import MethodData

GUARD_CHOICES = ("warn", "fix", "off")


def guard_param(default: str) -> Any:
    return param(default, "collapse guard: 'warn' records a retain collapse, 'fix' raises alpha until the retained "
                 "classes are kept, 'off'", choices=GUARD_CHOICES)


def guard_threshold_param() -> Any:
    return param(RETAIN_DROP, "largest retain-accuracy drop the guard accepts (fraction, on a retain-train sample)",
                 min=0.0, max=1.0)


@dataclass
class SSDConfig:
    """SSD: selection threshold alpha, dampening strength lambda and the importance estimator."""

    alpha: float = param(10.0, "selection threshold: dampen where I_f > alpha * I_D", min=1e-6, max=1e6, log=True,
                         live=True)
    lam: float = param(1.0, "dampening strength lambda: beta = min(lambda * I_D / I_f, 1)", min=0.0, max=1e6,
                       live=True)
    estimator: str = param("fisher", "importance estimator", choices=("fisher", "fisher_exact"))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)
    guard: str = guard_param("warn")
    guard_threshold: float = guard_threshold_param()


@dataclass
class LFSSDConfig:
    """LFSSD: SSD with the loss-free importance (no labels needed)."""

    alpha: float = param(5.0, "selection threshold (smaller than SSD's)", min=1e-6, max=1e6, log=True, live=True)
    lam: float = param(1.0, "dampening strength lambda", min=0.0, max=1e6, live=True)
    estimator: str = param("lossfree", "importance estimator (label-free)", choices=("lossfree",))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)
    guard: str = guard_param("warn")
    guard_threshold: float = guard_threshold_param()


@dataclass
class ASSDConfig:
    """Adaptive SSD: alpha from the forget set's share of the data, then the collapse guard."""

    lam: float = param(1.0, "dampening strength lambda: beta = min(lambda * I_D / I_f, 1)", min=0.0, max=1e6)
    estimator: str = param("fisher", "importance estimator", choices=("fisher", "fisher_exact"))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)
    guard: str = guard_param("fix")
    guard_threshold: float = guard_threshold_param()


@dataclass
class ALFSSDConfig:
    """Adaptive LFSSD: the loss-free importance with the adaptive alpha and the collapse guard."""

    lam: float = param(1.0, "dampening strength lambda", min=0.0, max=1e6)
    estimator: str = param("lossfree", "importance estimator (label-free)", choices=("lossfree",))
    batch_size: int = param(64, "importance batch size", min=1, max=4096)
    guard: str = guard_param("fix")
    guard_threshold: float = guard_threshold_param()


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
    full_seconds, full_cached = time.perf_counter() - start, cache.misses == misses
    start = time.perf_counter()
    # I_f is cached like I_D, on disk for whole classes (asked for again and again; shipped for Fashion-MNIST's
    # default model), in memory only for other requests (a random or hand-picked set rarely recurs).
    forget = cache.full_importance(
        model,
        split.forget_train,
        data_key=cache.forget_data_key(data_key, split.forget_train),
        estimator=estimator,
        batch_size=batch_size,
        device=device,
        progress=scaled(progress, 0.8, 1.0),
        model_key=model_key,
        keep_on_disk=split.request.kind == "class",
    )
    return SSDImportances(full, forget, full_seconds, time.perf_counter() - start, full_cached)


def _run(work: nn.Module, data: MethodData, config, *, device: torch.device, progress: OptionalProgress = None) -> MethodOutcome:
    adaptive = not hasattr(config, "alpha")
    importances = ssd_importances(work, data, config.estimator, config.batch_size, device=device,
                                  progress=scaled(progress, 0, 0.9))
    full, forget = importances.full, importances.forget
    diagnostics: dict[str, Any] = {"full_importance_cached": importances.full_cached}
    seconds = {"importance_full": importances.full_seconds, "importance_forget": importances.forget_seconds}
    guard = None
    if config.guard != "off":
        report(progress, 0.9, "collapse guard: measuring the original on a retain-train sample")
        guard = CollapseGuard(work, data.retain_train, data.forget_train, device, threshold=config.guard_threshold,
                              whole_classes=data.request.kind in ("class", "subclass"))
    start = time.perf_counter()
    if adaptive:
        setting = SSDEngine(work, full, forget).auto(guard, len(data.forget_train), len(data.train), config.lam,
                                                     apply_fix=config.guard == "fix")
        alpha, lam = setting.alpha, setting.lam_used
        check, fix, applied = setting.check, setting.fix, setting.corrected
        diagnostics["adaptive"] = setting.adaptive.to_dict()
    else:
        alpha, lam, fix, applied = config.alpha, config.lam, None, False
        check_hyperparameters(alpha, config.lam)
        check = guard.check_setting(work, full, forget, alpha, config.lam) if guard is not None else None
        if check is not None and check.fired:
            fix = guard.fix(work, full, forget, alpha, config.lam)  # type: ignore[union-attr]
            if config.guard == "fix" and fix.kept:
                alpha, lam, applied = fix.alpha, fix.lam, True
    if guard is not None:
        seconds["guard"] = time.perf_counter() - start
        diagnostics["guard"] = {"mode": config.guard, "check": None if check is None else check.to_dict(),
                                "fix": None if fix is None else fix.to_dict(), "applied": applied}
    start = time.perf_counter()
    new_model, dampening_report = SSDEngine(work, full, forget).at(alpha, lam, with_statistics=True)
    seconds["dampening"] = time.perf_counter() - start
    diagnostics = {"report": dampening_report, **diagnostics, "alpha": alpha}
    if lam != config.lam:
        diagnostics["lam"] = lam  # the guard's wider search chose another lambda (whole classes)
    report(progress, 1.0, f"dampened {dampening_report.total_selected} parameters at alpha {alpha:.3g}")
    return MethodOutcome(new_model, diagnostics, seconds)


register_method(
    MethodSpec(
        "ssd",
        "Selective Synaptic Dampening: shrink parameters far more important to the forget set than to the full data.",
        SSDConfig,
        _run,
        data_touched=FULL_DATA_CACHED,
        model_alpha=True,
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
register_method(
    MethodSpec(
        "assd",
        "Adaptive SSD: alpha set from the forget set's share of the data, then the collapse guard keeps the rest.",
        ASSDConfig,
        _run,
        data_touched=FULL_DATA_CACHED,
    )
)
register_method(
    MethodSpec(
        "alfssd",
        "Adaptive loss-free SSD: LFSSD with the adaptive alpha and the collapse guard.",
        ALFSSDConfig,
        _run,
        data_touched=FULL_DATA_CACHED,
    )
)
