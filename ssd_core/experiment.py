"""One unlearning run end to end (data -> model -> method -> metrics), as the CLI reports it.

:func:`run_experiment` is what ``python -m ssd_core unlearn`` calls; its result serialises to
the documented JSON schema (``dataset``, ``model``, ``method``, ``params``, ``forget``,
``seconds``, ``before``, ``after``, ...). The dashboard uses the same building blocks through
``ui/`` so the numbers agree.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import __version__
from .checkpoints import config_for_dataset, load_model, read_model_config
from .data import ForgetRequest, ImageDataset, load_dataset, make_split
from .errors import InputError
from .methods import get_method, run_method
from .metrics import Evaluator, random_reference_logits
from .models import get_spec, resolve_device
from .original_outputs import original_outputs
from .progress import OptionalProgress, report, scaled
from .train import load_or_train


@dataclass
class ExperimentConfig:
    dataset: str
    model: str
    request: ForgetRequest
    method: str = "ssd"
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    checkpoint: str | None = None
    checkpoint_config: str | None = None  # JSON written by our export, or None to infer
    eval_sample: int | None = None  # evaluate each subset on a fixed stratified sample of at most this many images


def seed_everything(seed: int) -> None:
    """Seed torch on the CPU and every GPU."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def environment() -> dict[str, str]:
    """Versions and hardware a result was computed with (ssd_core, torch, Python, platform, CUDA, device)."""
    return {
        "ssd_core": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda": torch.version.cuda or "none",
    }


def original_model(config: ExperimentConfig, dataset: ImageDataset, device: torch.device,
                   progress: OptionalProgress = None) -> tuple[nn.Module, str]:
    """The model to unlearn from: the user's checkpoint, or the shipped/cached/trained one.

    Returns:
        The model on ``device`` in eval mode and where it came from ("checkpoint", "shipped",
        "cache" or "trained").
    """
    if config.checkpoint:
        model_config = config_for_dataset(config.model, dataset)
        if config.checkpoint_config:
            model_config = read_model_config(config.checkpoint_config)
            if model_config.num_classes != dataset.num_classes:
                raise InputError(
                    f"The checkpoint has {model_config.num_classes} classes but {dataset.name} has {dataset.num_classes}."
                )
        original: nn.Module = load_model(config.checkpoint, model_config)
        source = "checkpoint"
    elif config.model.startswith("hf:"):
        from .hf import hf_original

        original, source = hf_original(config.model, dataset), "hugging face"
    else:
        get_spec(config.model)
        trained = load_or_train(dataset, config.model, seed=config.seed, device=device, progress=progress)
        original, source = trained.model, trained.source
    return original.to(device).eval(), source


def run_experiment(config: ExperimentConfig, progress: OptionalProgress = None) -> dict[str, Any]:
    """Run one unlearning request and return the JSON-ready result (see module docstring)."""
    total_start = time.perf_counter()
    device = resolve_device(config.device)
    spec = get_method(config.method)
    method_config = spec.config_for(config.model, **config.params)  # validates before any heavy work
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    report(progress, 0.0, f"loading {config.dataset}")
    dataset = load_dataset(config.dataset, config.data_dir, config.download)
    split = make_split(dataset, config.request)
    if config.request.kind not in spec.supports:
        raise InputError(f"Method '{config.method}' does not support {config.request.kind} forget requests.")
    seconds["data"] = time.perf_counter() - start

    start = time.perf_counter()
    original, model_source = original_model(config, dataset, device, scaled(progress, 0.0, 0.4))
    seconds["original_model"] = time.perf_counter() - start

    report(progress, 0.4, "evaluating the original model")
    random_logits = random_reference_logits(config.model, split, device, seed=config.seed)
    # every image, or the Unlearn page's live sample (--eval-sample)
    evaluator = Evaluator(split, device, max_per_subset=config.eval_sample, seed=config.seed, stratified=True,
                          random_forget_logits=random_logits)
    if evaluator.full:  # every image: the original's logits are the same for every request (cached, shipped)
        start = time.perf_counter()
        before = evaluator.from_outputs(original_outputs(original, split, device))
        before.seconds = time.perf_counter() - start
    else:
        before = evaluator(original)

    seed_everything(config.seed)
    result = run_method(config.method, original, split, method_config, device=device, progress=scaled(progress, 0.45, 0.9))
    for key, value in result.seconds.items():
        seconds[f"method_{key}" if key == "total" else key] = value

    report(progress, 0.9, "evaluating the unlearned model")
    after = evaluator(result.model)
    seconds["evaluation"] = before.seconds + after.seconds
    seconds["total"] = time.perf_counter() - total_start
    report(progress, 1.0, "done")

    diagnostics = {}
    for key, value in result.diagnostics.items():
        diagnostics[key] = value.to_dict() if hasattr(value, "to_dict") else value
    return {
        "dataset": dataset.name,
        "model": config.model,
        "model_source": model_source,
        "method": config.method,
        "params": dataclasses.asdict(method_config),
        "forget": {
            **config.request.to_dict(),
            "description": config.request.describe(),
            "forget_classes": list(split.forget_classes),
            "n_forget_train": len(split.forget_train),
            "n_retain_train": len(split.retain_train),
            "n_forget_test": len(split.forget_test),
            "n_retain_test": len(split.retain_test),
        },
        "seed": config.seed,
        "device": str(device),
        "evaluated": evaluator.sizes(),
        "data_touched": result.data_touched,
        "seconds": seconds,
        "before": before.to_dict(),
        "after": after.to_dict(),
        "diagnostics": diagnostics,
        "environment": environment(),
        "_model": result.model,  # removed by the CLI before writing JSON; handy for the library
    }


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    """The result without live objects (what the CLI writes)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


SUMMARY_ROWS = (
    ("forget (test)", "forget_test_acc"),
    ("forget (train)", "forget_train_acc"),
    ("retain (test)", "retain_test_acc"),
    ("retain (train)", "retain_train_acc"),
    ("test", "test_acc"),
    ("MIA", "mia"),
)


def percent(value: Any) -> str:
    """A fraction as the CLI prints it: '97.3%', or 'n/a' for None."""
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def summary_text(result: dict[str, Any]) -> str:
    """A few lines for a person: what ran, the metrics before and after, what SSD dampened."""
    pct = percent

    params = result.get("params", {})
    knobs = ", ".join(f"{label} {params[k]:g}" for k, label in (("alpha", "alpha"), ("lam", "lambda"))
                      if isinstance(params.get(k), (int, float)))
    seconds = result.get("seconds", {}).get("total")
    lines = [
        f"{result['dataset']} / {result['model']}: {result['method']} forgetting {result['forget']['description']}"
        + (f" ({knobs})" if knobs else "") + (f" in {seconds:.1f} s" if isinstance(seconds, float) else ""),
        f"{'':16}{'before':>8}{'after':>9}",
    ]
    for label, key in SUMMARY_ROWS:
        lines.append(f"{label:16}{pct(result['before'].get(key)):>8}{pct(result['after'].get(key)):>9}")
    diagnostics = result.get("diagnostics", {})
    report = diagnostics.get("report")
    if isinstance(report, dict) and "total_selected" in report:
        lines.append(f"dampened {report['total_selected']:,} of {report['total_params']:,} parameters "
                     f"({report['fraction_selected']:.2%}) at alpha {report['alpha']:.3g}")
    lines += guard_lines(diagnostics)
    return "\n".join(lines)


def guard_lines(diagnostics: dict[str, Any]) -> list[str]:
    """What the adaptive alpha and the collapse guard did, in sentences (the CLI prints them)."""
    lines = []
    adaptive = diagnostics.get("adaptive")
    if isinstance(adaptive, dict):
        lines.append(f"adaptive alpha {adaptive['alpha']:.3g}: the {adaptive['percentile']:.2f}th percentile of I_f / I_D "
                     f"(the forget set is {100 * adaptive['n_forget'] / adaptive['n_total']:.1f}% of the training data)")
    guard = diagnostics.get("guard")
    if not isinstance(guard, dict) or not isinstance(guard.get("check"), dict):
        return lines
    from .guard import GuardCheck, GuardFix

    check = GuardCheck.from_dict(guard["check"])
    fix = GuardFix.from_dict(guard["fix"], lam_asked=check.lam) if isinstance(guard.get("fix"), dict) else None
    # The page's own sentences (GuardCheck.sentence, GuardFix.sentence), so the two never say it differently.
    lines.append(("WARNING " if check.fired else "collapse guard: ") + check.sentence())
    if fix is None or (not check.fired and not check.incomplete):
        return lines
    if guard.get("applied"):
        lines.append("collapse guard, applied: " + fix.sentence())
    elif fix.kept and guard.get("mode") != "fix":
        lines.append("collapse guard: " + fix.sentence() + " Rerun with --guard to use it.")
    else:
        lines.append("collapse guard: " + fix.sentence())
    return lines
