"""Re-running a paper's experiment where its data is: ``python -m ssd_core reproduce NAME``.

``ssd-cifar100-fullclass`` (Foster et al., SSD, AAAI 2024, full-class forgetting on CIFAR-100):
ResNet-18 in the authors' layout (``resnet18_cifar100``, trained here with its default schedule,
or loaded from the cache), then for each of the paper's five classes (rocket, mushroom, baby, lamp,
sea) SSD at alpha 10 / lambda 1, adaptive SSD and retrain from scratch. Per row: retain and forget
accuracy on the test split (Dr, Df), the MIA of the SSD paper, seconds, and SSD's seconds over
retrain's. With ``--vit FOLDER`` (a transformers ViT fine-tuned on CIFAR-100, saved with
``save_pretrained``; needs the ``[hf]`` extra) the same classes are also forgotten from the ViT with
SSD at the paper's ViT alpha (5) and adaptive SSD. The ViT has no retrain row: the paper's ViT
retrain fine-tunes the ImageNet weights again without the class, which needs those weights.
The paper's own numbers are not printed: they could not be checked here.
"""

from __future__ import annotations

import time
from typing import Any

from torch import nn

from .data import ForgetRequest, load_dataset, make_split
from .errors import InputError
from .experiment import seed_everything
from .methods import run_method
from .metrics import evaluate
from .models import resolve_device
from .progress import OptionalProgress, report, scaled
from .train import load_or_train

EXPERIMENTS: dict[str, dict[str, Any]] = {
    "ssd-cifar100-fullclass": {
        "dataset": "cifar100",
        "model": "resnet18_cifar100",
        "classes": ("rocket", "mushroom", "baby", "lamp", "sea"),
        "methods": {"ssd": {"alpha": 10.0, "lam": 1.0}, "assd": {}, "retrain": {}},
        "vit_methods": {"ssd": {"alpha": 5.0, "lam": 1.0}, "assd": {}},
    },
}


def reproduce(name: str, *, data_dir: str | None = None, device: str = "auto", model: str | None = None,
              seed: int = 0, vit: str | None = None, progress: OptionalProgress = None) -> dict[str, Any]:
    """Run experiment ``name`` (see ``EXPERIMENTS``) and return its table as JSON-ready rows.

    Args:
        name: the experiment.
        data_dir: where the dataset files are (never downloaded here).
        device: "auto", "cpu", "cuda", ...
        model: another architecture than the paper's (e.g. a small one for a quick check).
        seed: the training and method seed.
        vit: a ``save_pretrained`` folder of a ViT fine-tuned on the dataset: adds its rows.
        progress: ``progress(fraction, message)``.

    Returns:
        ``experiment``, ``dataset``, ``model``, ``original_test_acc``, ``rows`` (one per class and
        method) and ``ssd_over_retrain`` (mean SSD seconds over mean retrain seconds).
    """
    if name not in EXPERIMENTS:
        raise InputError(f"Unknown experiment '{name[:60]}'; choose one of: {', '.join(EXPERIMENTS)}.")
    spec = EXPERIMENTS[name]
    torch_device = resolve_device(device)
    dataset = load_dataset(spec["dataset"], data_dir)
    model_name = model or spec["model"]
    trained = load_or_train(dataset, model_name, seed=seed, device=torch_device,
                            progress=scaled(progress, 0.0, 0.3 if vit is None else 0.2))
    models: list[tuple[str, nn.Module, dict[str, dict[str, float]]]] = [
        (model_name, trained.model.to(torch_device).eval(), spec["methods"])]
    vit_acc = None
    if vit is not None:
        from .hf import hf_original

        vit_model = hf_original(f"hf:{vit}", dataset).to(torch_device).eval()
        vit_acc = evaluate(vit_model, make_split(dataset, ForgetRequest("class", target=spec["classes"][0])),
                           torch_device, with_mia=False).test_acc
        models.append((f"hf:{vit}", vit_model, spec["vit_methods"]))
    rows = []
    steps = len(spec["classes"]) * sum(len(methods) for _, _, methods in models)
    done = 0
    for architecture, original, methods in models:
        for target in spec["classes"]:
            split = make_split(dataset, ForgetRequest("class", target=target))
            for method, options in methods.items():
                step = scaled(progress, 0.3 + 0.7 * done / steps, 0.3 + 0.7 * (done + 1) / steps)
                done += 1
                report(step, 0.0, f"{method} on {target}")
                seed_everything(seed)
                start = time.perf_counter()
                result = run_method(method, original, split, device=torch_device, progress=step, **options)
                seconds = time.perf_counter() - start
                after = evaluate(result.model, split, torch_device)
                rows.append({"model": "vit" if architecture != model_name else "resnet", "class": target,
                             "method": method, "retain_test_acc": after.retain_test_acc,
                             "forget_test_acc": after.forget_test_acc, "mia": after.mia, "seconds": seconds,
                             "alpha": result.diagnostics.get("alpha")})
    main_rows = [r for r in rows if r["model"] == "resnet"]
    mean = {m: sum(r["seconds"] for r in main_rows if r["method"] == m) / len(spec["classes"]) for m in spec["methods"]}
    report(progress, 1.0, "done")
    return {"experiment": name, "dataset": dataset.name, "model": model_name, "seed": seed,
            "original_test_acc": trained.test_acc, "model_source": trained.source, "rows": rows,
            "vit": vit, "vit_test_acc": vit_acc,
            "ssd_over_retrain": mean["ssd"] / mean["retrain"] if mean.get("retrain") else None}


def table_text(result: dict[str, Any]) -> str:
    """The rows as a fixed-width table (what the CLI prints)."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}"

    lines = [f"{result['experiment']}: {result['dataset']}/{result['model']} (original test accuracy "
             f"{100 * result['original_test_acc']:.1f}%, {result['model_source']})"]
    if result.get("vit"):
        lines.append(f"and the ViT {result['vit']} (test accuracy {pct(result['vit_test_acc'])}%; no retrain row)")
    lines.append(f"{'model':<7} {'class':<10} {'method':<8} {'Dr acc':>7} {'Df acc':>7} {'MIA':>6} {'seconds':>8}")
    for row in result["rows"]:
        lines.append(f"{row['model']:<7} {row['class']:<10} {row['method']:<8} {pct(row['retain_test_acc']):>7} "
                     f"{pct(row['forget_test_acc']):>7} {pct(row['mia']):>6} {row['seconds']:>8.2f}")
    if result["ssd_over_retrain"] is not None:
        lines.append(f"SSD time over retrain time (ResNet): {result['ssd_over_retrain']:.3f}")
    lines.append("Dr/Df: retain/forget accuracy on the test split (%); MIA as in the SSD paper (%).")
    return "\n".join(lines)
