"""Seeds: run a method over S seeds and report every metric as a mean with a 95% interval.

Seed s trains an independent retrained reference (seed s, cached) and runs the method with seed
s; the original model is fixed (``vary_original=True`` also trains the original with seed s, where
training is cheap). The interval is mean +- t(0.975, S - 1) * sd / sqrt(S) (Student's t: with 5
seeds it is 2.78 standard errors wide on each side, not 1.96).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..data import ForgetSplit
from ..metrics import evaluate, logits_of
from ..progress import OptionalProgress, report, scaled
from .distance import distance
from .layers import layer_samples, linear_cka
from .probe import penultimate_features

SEEDS = 5
# Student's t quantile t(0.975, df) for df = 1..30; above 30 the normal 1.96 is within 4%.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]
SEED_METRICS = ("forget_test_acc", "retain_test_acc", "forget_train_acc", "mia", "js_forget_test",
                "total_variation_forget_test", "total_variation_retain_test", "cka_original_features",
                "cka_retrained_features", "retrained_forget_test_acc", "retrained_retain_test_acc")


@dataclass(frozen=True)
class Interval:
    """Mean and 95% interval of one metric over seeds (lo == hi == mean for one seed)."""

    mean: float | None
    lo: float | None
    hi: float | None
    values: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def t_quantile(df: int) -> float:
    """t(0.975, df): the two-sided 95% Student's t quantile."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def interval(values: list[float | None], bounds: tuple[float, float] | None = None) -> Interval:
    """Mean +- t * standard error over the values that are not None, cut to ``bounds`` where the metric has them
    (an accuracy's interval does not reach past 100%)."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return Interval(None, None, None, [])
    mean = statistics.fmean(kept)
    if len(kept) < 2:
        return Interval(mean, mean, mean, kept)
    half = t_quantile(len(kept) - 1) * statistics.stdev(kept) / math.sqrt(len(kept))
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return Interval(mean, lo, hi, kept)


def feature_cka(model: torch.nn.Module, others: dict[str, torch.nn.Module], images: Any,
                device: torch.device | str = "cpu") -> dict[str, float | None]:
    """Linear CKA of ``model``'s penultimate features to each of ``others``' on ``images`` (None: too few)."""
    if len(images) < 3:
        return {name: None for name in others}
    mine = penultimate_features(model, images, device)
    return {name: linear_cka(mine, penultimate_features(other, images, device)) for name, other in others.items()}


def seed_runs(method: str, original: torch.nn.Module, split: ForgetSplit, model: str, *, params: dict[str, Any] | None = None,
              seeds: int | list[int] = SEEDS, vary_original: bool = False, device: torch.device | str = "cpu",
              progress: OptionalProgress = None) -> dict[str, Interval]:
    """Every metric of ``method`` as mean and 95% interval over seeds.

    Args:
        method: a registered method.
        original: the original model (used for every seed unless ``vary_original``).
        split: the forget request.
        model: the architecture name (for the retrained references).
        params: the method's options (its ``seed`` is set per run).
        seeds: how many seeds (0 .. S-1) or the list of seeds.
        vary_original: also train the original with each seed.
        device: where to compute.
        progress: ``progress(fraction, message)``.

    Returns:
        metric name -> Interval (see ``SEED_METRICS``).
    """
    from ..methods import get_method, run_method
    from ..train import load_or_train
    from .reference import retrained_reference

    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    spec = get_method(method)
    samples = layer_samples(split, 0)  # the same images for every seed
    values: dict[str, list[float | None]] = {name: [] for name in SEED_METRICS}
    for i, seed in enumerate(seed_list):
        step = scaled(progress, i / len(seed_list), (i + 1) / len(seed_list))
        report(step, 0.0, f"seed {seed} ({i + 1} of {len(seed_list)})")
        base = original
        if vary_original and seed != 0:
            base = load_or_train(split.dataset, model, seed=seed, device=device, progress=scaled(step, 0.0, 0.3)).model
        reference = retrained_reference(split, model, seed=seed, device=device, progress=scaled(step, 0.3, 0.7)).model
        options = dict(params or {})
        if any(f.name == "seed" for f in dataclasses.fields(spec.config_cls)):
            options["seed"] = seed
        unlearned = run_method(method, base, split, device=device, progress=scaled(step, 0.7, 0.95), **options).model
        after = evaluate(unlearned, split, device)
        retrained = evaluate(reference, split, device, with_mia=False)
        for name in ("forget_test_acc", "retain_test_acc", "forget_train_acc", "mia"):
            values[name].append(getattr(after, name))
        values["retrained_forget_test_acc"].append(retrained.forget_test_acc)
        values["retrained_retain_test_acc"].append(retrained.retain_test_acc)
        for subset, name in ((split.forget_test, "forget_test"), (split.retain_test, "retain_test")):
            gap = distance(logits_of(unlearned, subset, device), logits_of(reference, subset, device))
            if name == "forget_test":
                values["js_forget_test"].append(gap.js)
            values[f"total_variation_{name}"].append(gap.total_variation)
        inside = feature_cka(unlearned, {"original": base, "retrained": reference}, samples.forget, device)
        values["cka_original_features"].append(inside["original"])
        values["cka_retrained_features"].append(inside["retrained"])
    report(progress, 1.0, f"{len(seed_list)} seeds done")
    return {name: interval(vals, (0.0, 1.0)) for name, vals in values.items()}  # every seed metric lies in [0, 1]
