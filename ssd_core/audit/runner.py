"""An audit end to end (data -> original -> methods -> retrained -> shadows -> audit), as the CLI
and the Audit page run it."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data import ForgetSplit, load_dataset, make_split
from ..errors import InputError
from ..experiment import ExperimentConfig, environment, original_model, seed_everything
from ..methods import get_method, run_method
from ..models import resolve_device
from ..progress import OptionalProgress, report, scaled
from . import AuditConfig, audit_models
from .layers import check_embedding
from .lira import build_shadows, find_shadows, shadow_plan
from .reference import retrained_reference
from .seeds import seed_runs

MAX_SHADOWS = 64  # LiRA shadow models: each is a training run (16 is the plan on small data)
MAX_SEEDS = 20  # seeds of an audit: each retrains the reference and reruns every method


def check_counts(shadows: int | None, seeds: int, train_seeds: int = 0) -> None:
    """Refuse, before anything is loaded or trained, shadow and seed counts no audit could finish."""
    if shadows is not None:
        if shadows < 0 or shadows > MAX_SHADOWS:
            raise InputError(f"LiRA uses 0 to {MAX_SHADOWS} shadow models (each one is a training run); got {shadows}.")
        if shadows % 2:
            raise InputError(f"The number of shadow models must be even (each image is in half of them); got {shadows}.")
    if seeds < 0 or seeds > MAX_SEEDS:
        raise InputError(f"An audit runs at most {MAX_SEEDS} seeds (each retrains the reference model); got {seeds}.")
    if train_seeds < 0 or train_seeds > MAX_SEEDS:
        raise InputError(f"An audit runs at most {MAX_SEEDS} training seeds (each trains an original and its retrained "
                         f"model); got {train_seeds}.")


@dataclass
class AuditRun:
    """What to audit: one request, one or more methods (each with its options)."""

    experiment: ExperimentConfig  # dataset, model, request, seed, device, data (method/params unused)
    methods: dict[str, dict[str, Any]]  # method name -> its options
    seeds: int = 0  # 0 or 1: one run; S >= 2: every metric as mean and 95% interval over S seeds
    train_seeds: int = 0  # N >= 2: the same over N original models (training seeds), each with its own reference
    shadows: int | None = None  # K for LiRA; None: the dataset's plan (lira.shadow_plan); 0: no per-example attack
    build_missing_shadows: bool = True  # train the shadows when none are shipped or cached
    audit: AuditConfig = field(default_factory=AuditConfig)


def run_audit(run: AuditRun, progress: OptionalProgress = None) -> dict[str, Any]:
    """Load the data and the original model, then :func:`audit_request`; returns the JSON-ready audit."""
    start = time.perf_counter()
    config = run.experiment
    check_counts(run.shadows, run.seeds, run.train_seeds)
    check_embedding(run.audit.embedding)
    if run.train_seeds > 1 and config.checkpoint:
        raise InputError("--train-seeds trains the original model once per seed, so it needs a registry model, not "
                         "--checkpoint.")
    if not run.methods:
        raise InputError("Name at least one method to audit.")
    for name in run.methods:
        get_method(name)
    device = resolve_device(config.device)
    dataset = load_dataset(config.dataset, config.data_dir, config.download)
    split = make_split(dataset, config.request)
    t = time.perf_counter()
    original, source = original_model(config, dataset, device, scaled(progress, 0.0, 0.1))
    loaded = time.perf_counter() - t
    result = audit_request(original, split, config.model, run.methods, seed=config.seed, device=device,
                           shadows=run.shadows, build_missing_shadows=run.build_missing_shadows, seeds=run.seeds,
                           train_seeds=run.train_seeds, config=run.audit, progress=scaled(progress, 0.1, 1.0))
    result["model_source"] = source
    result["seconds"] = {"original_model": loaded, **result["seconds"], "total": time.perf_counter() - start}
    return result


def audit_request(original: nn.Module, split: ForgetSplit, model: str, methods: dict[str, dict[str, Any]], *,
                  seed: int = 0, device: torch.device | str = "cpu", shadows: int | None = None,
                  build_missing_shadows: bool = True, seeds: int = 0, train_seeds: int = 0,
                  config: AuditConfig | None = None, progress: OptionalProgress = None,
                  keep_original: bool = True) -> dict[str, Any]:
    """Run each method from ``original`` on ``split`` and audit the results (the CLI and the page).

    Args:
        original: the original model (never modified).
        split: the forget request.
        model: the architecture's registry name (the retrained reference and the shadows use it).
        methods: method name -> its options (as ``--param`` would give them).
        seed: the retrained reference's seed (methods are seeded by their own ``seed`` option).
        device: where to compute.
        shadows: K LiRA shadow models (None: the dataset's plan, see ``lira.shadow_plan``; 0: no per-example attack).
        build_missing_shadows: train the shadows when none are shipped or cached.
        seeds: S >= 2 also runs every method over S seeds (mean and 95% interval).
        train_seeds: N >= 2 also runs every method from N original models (training seeds 0 .. N-1, each original
            trained, or read where shipped or cached, with the architecture's schedule), each against its own
            retrained reference (mean and 95% interval).
        config: the audit's sample sizes and relearning schedule.
        progress: ``progress(fraction, message)``.
        keep_original: as :func:`ssd_core.audit.audit_models` (False: an upload's logits stay off the disk).

    Returns:
        JSON-ready: ``methods`` (the options used), ``audit`` (every number and the verdicts),
        ``seeds`` and ``train_seeds`` (intervals, when asked), ``seconds``, ``environment``.
    """
    start = time.perf_counter()
    check_counts(shadows, seeds, train_seeds)
    check_embedding((config or AuditConfig()).embedding)
    if not methods:
        raise InputError("Name at least one method to audit.")
    specs = {name: get_method(name) for name in methods}
    for name, spec in specs.items():
        if split.request.kind not in spec.supports:
            raise InputError(f"Method '{name}' does not support {split.request.kind} forget requests.")
    plan = shadow_plan(split.dataset, model)
    if shadows is None:
        shadows = plan.count
    checked = {name: specs[name].config_for(model, **options) for name, options in methods.items()}
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    reference = retrained_reference(split, model, seed=seed, device=device,
                                    progress=scaled(progress, 0.0, 0.25)).model.to(device)
    seconds["retrained"] = time.perf_counter() - t
    shadow_set = None
    t = time.perf_counter()
    if shadows:
        shadow_set = find_shadows(split.dataset, model, count=shadows)
        if shadow_set is None and build_missing_shadows:
            shadow_set = build_shadows(split.dataset, model, count=shadows, device=device,
                                       progress=scaled(progress, 0.25, 0.6))
    seconds["shadows"] = time.perf_counter() - t
    unlearned = {}
    t = time.perf_counter()
    for i, name in enumerate(methods):
        seed_everything(seed)
        lo = 0.6 + 0.1 * i / len(methods)
        unlearned[name] = run_method(name, original, split, checked[name], device=device,
                                     progress=scaled(progress, lo, lo + 0.1 / len(methods))).model
    seconds["methods"] = time.perf_counter() - t
    t = time.perf_counter()
    audited = audit_models(original, unlearned, split, reference, shadows=shadow_set, config=config, device=device,
                           progress=scaled(progress, 0.7, 0.85 if seeds > 1 or train_seeds > 1 else 1.0),
                           keep_original=keep_original)
    seconds["audit"] = time.perf_counter() - t
    spreads: dict[str, dict[str, dict]] = {"seeds": {}, "train_seeds": {}}
    for kind, count, vary in (("seeds", seeds, False), ("train_seeds", train_seeds, True)):
        if count < 2:
            continue
        t = time.perf_counter()
        for i, (name, options) in enumerate(methods.items()):
            lo = 0.85 + 0.15 * i / len(methods)
            found = seed_runs(name, original, split, model, params=options, seeds=count, vary_original=vary,
                              device=device, progress=scaled(progress, lo, lo + 0.15 / len(methods)))
            spreads[kind][name] = {k: v.to_dict() for k, v in found.items()}
        seconds[kind] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    report(progress, 1.0, "audit done")
    return {
        "dataset": split.dataset.name,
        "model": model,
        "forget": {**split.request.to_dict(), "description": split.request.describe()},
        "seed": seed,
        "methods": {name: dataclasses.asdict(c) for name, c in checked.items()},
        "audit": audited.to_dict(),
        "seeds": spreads["seeds"],
        "train_seeds": spreads["train_seeds"],
        "seconds": seconds,
        "environment": environment(),
        "_report": audited,  # the live object (dropped from JSON by json_ready)
    }
