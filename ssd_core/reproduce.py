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

``fashion-fullclass``: every registered method that takes class requests, at its defaults, on each
Fashion-MNIST class with the shipped smallcnn (Debian's ``dataset-fashion-mnist`` files, no download),
the model retrained without the class as the reference (shipped for all ten classes). Each row adds
its gap to retrain: the mean absolute difference, in points, of forget-test, retain-test and MIA from the
retrained model's. ``--classes`` and ``--methods`` pick a part of the table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from torch import nn

from .data import ForgetRequest, load_dataset, make_split
from .errors import InputError
from .experiment import seed_everything
from .methods import available_methods, get_method, run_method
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
        "vit_methods": {"ssd": {"lam": 1.0}, "assd": {}},  # ssd at the model's paper alpha (5)
    },
    "fashion-fullclass": {
        "dataset": "fashion_mnist",
        "model": "smallcnn",
        "classes": None,  # every class
        "methods": None,  # every registered method that supports class requests, at its defaults
        "vit_methods": {"ssd": {"lam": 1.0}, "assd": {}},  # ssd at the model's paper alpha (5)
    },
}
GAP_COLUMNS = ("forget_test_acc", "retain_test_acc", "mia")


def _chosen(wanted: Sequence[str] | None, available: Sequence[str], what: str) -> list[str]:
    """``wanted`` (in the experiment's order) when given and all known, else everything available."""
    if not wanted:
        return list(available)
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise InputError(f"Unknown {what} '{str(unknown[0])[:40]}' for this experiment; choose from: {', '.join(available)}.")
    return [a for a in available if a in wanted]


def _add_gaps(rows: list[dict[str, Any]]) -> None:
    """Each row's gap to the retrain row of the same model and class (mean |difference|, points)."""
    reference = {(r["model"], r["class"]): r for r in rows if r["method"] == "retrain"}
    for row in rows:
        gold = reference.get((row["model"], row["class"]))
        values = [(row[c], gold[c]) for c in GAP_COLUMNS if gold is not None and row[c] is not None and gold[c] is not None]
        row["gap_to_retrain"] = 100 * sum(abs(a - b) for a, b in values) / len(values) if values else None


def reproduce(name: str, *, data_dir: str | None = None, device: str = "auto", model: str | None = None,
              seed: int = 0, vit: str | None = None, classes: Sequence[str] | None = None,
              methods: Sequence[str] | None = None, progress: OptionalProgress = None) -> dict[str, Any]:
    """Run experiment ``name`` (see ``EXPERIMENTS``) and return its table as JSON-ready rows.

    Args:
        name: the experiment.
        data_dir: where the dataset files are (never downloaded here).
        device: "auto", "cpu", "cuda", ...
        model: another architecture than the paper's (e.g. a small one for a quick check).
        seed: the training and method seed.
        vit: a ``save_pretrained`` folder of a ViT fine-tuned on the dataset: adds its rows.
        classes: only these classes (names or indices as text; default: the experiment's).
        methods: only these methods (default: the experiment's).
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
    all_classes = [str(c) for c in (spec["classes"] or dataset.classes)]
    by_index = {str(i): c for i, c in enumerate(all_classes)} if spec["classes"] is None else {}
    targets = _chosen([by_index.get(str(c), str(c)) for c in classes or ()], all_classes, "class")
    every = spec["methods"] or {m: {} for m, s in available_methods().items() if "class" in s.supports}
    main_methods = {m: every[m] for m in _chosen(methods, list(every), "method")}
    model_name = model or spec["model"]
    trained = load_or_train(dataset, model_name, seed=seed, device=torch_device,
                            progress=scaled(progress, 0.0, 0.3 if vit is None else 0.2))
    models: list[tuple[str, nn.Module, dict[str, dict[str, float]]]] = [
        (model_name, trained.model.to(torch_device).eval(), main_methods)]
    vit_acc = None
    if vit is not None:
        from .hf import hf_original

        vit_model = hf_original(f"hf:{vit}", dataset).to(torch_device).eval()
        vit_acc = evaluate(vit_model, make_split(dataset, ForgetRequest("class", target=spec["classes"][0])),
                           torch_device, with_mia=False).test_acc
        models.append((f"hf:{vit}", vit_model, spec["vit_methods"]))
    rows = []
    steps = len(targets) * sum(len(chosen) for _, _, chosen in models)
    done = 0
    for architecture, original, chosen in models:
        for target in targets:
            split = make_split(dataset, ForgetRequest("class", target=target))
            for method, options in chosen.items():
                step = scaled(progress, 0.3 + 0.7 * done / steps, 0.3 + 0.7 * (done + 1) / steps)
                done += 1
                report(step, 0.0, f"{method} on {target}")
                seed_everything(seed)
                start = time.perf_counter()
                config = get_method(method).config_for(architecture, **options)
                result = run_method(method, original, split, config, device=torch_device, progress=step)
                seconds = time.perf_counter() - start
                source = result.diagnostics.get("source", "trained")
                if source != "trained":  # the retrained model was read from disk: its cost is its recorded training
                    seconds = result.diagnostics.get("recorded_training_s", seconds)
                after = evaluate(result.model, split, torch_device)
                rows.append({"model": "vit" if architecture != model_name else model_name, "class": target,
                             "method": method, "retain_test_acc": after.retain_test_acc,
                             "forget_test_acc": after.forget_test_acc, "mia": after.mia, "seconds": seconds,
                             "alpha": result.diagnostics.get("alpha"), "lam": result.diagnostics.get("lam"),
                             "source": source})
    _add_gaps(rows)
    summary = _summary([r for r in rows if r["model"] == model_name])
    report(progress, 1.0, "done")
    seconds_of = {m: row["seconds"] for m, row in summary.items()}
    return {"experiment": name, "dataset": dataset.name, "model": model_name, "seed": seed,
            "original_test_acc": trained.test_acc, "model_source": trained.source, "rows": rows, "summary": summary,
            "vit": vit, "vit_test_acc": vit_acc,
            "ssd_over_retrain": seconds_of["ssd"] / seconds_of["retrain"]
            if seconds_of.get("retrain") and "ssd" in seconds_of else None}


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, the mean of each column over its rows (None where a column has no values)."""
    summary: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        means: dict[str, Any] = {"classes": len(mine)}
        for column in (*GAP_COLUMNS, "seconds", "gap_to_retrain"):
            values = [r[column] for r in mine if r[column] is not None]
            means[column] = sum(values) / len(values) if values else None
        summary[method] = means
    return summary


def table_text(result: dict[str, Any]) -> str:
    """The rows, then the per-method means, as fixed-width tables (what the CLI prints)."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}"

    def gap(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    lines = [f"{result['experiment']}: {result['dataset']}/{result['model']} (original test accuracy "
             f"{100 * result['original_test_acc']:.1f}%, {result['model_source']})"]
    if result.get("vit"):
        lines.append(f"and the ViT {result['vit']} (test accuracy {pct(result['vit_test_acc'])}%; no retrain row)")
    header = f"{'Dr acc':>7} {'Df acc':>7} {'MIA':>6} {'gap':>5} {'seconds':>8}"
    lines.append(f"{'model':<9} {'class':<12} {'method':<13} {header}")
    for row in result["rows"]:
        recorded = "*" if row.get("source", "trained") != "trained" else " "
        lines.append(f"{row['model'][:9]:<9} {row['class'][:12]:<12} {row['method']:<13} {pct(row['retain_test_acc']):>7} "
                     f"{pct(row['forget_test_acc']):>7} {pct(row['mia']):>6} {gap(row['gap_to_retrain']):>5} "
                     f"{row['seconds']:>8.2f}{recorded}")
    summary = result.get("summary") or {}
    if summary and max(means["classes"] for means in summary.values()) > 1:
        lines.append("")
        lines.append(f"Mean over the classes ({result['model']}):")
        lines.append(f"{'method':<13} {header}")
        for method, means in summary.items():
            lines.append(f"{method:<13} {pct(means['retain_test_acc']):>7} {pct(means['forget_test_acc']):>7} "
                         f"{pct(means['mia']):>6} {gap(means['gap_to_retrain']):>5} {means['seconds']:>8.2f}")
    if result["ssd_over_retrain"] is not None:
        lines.append(f"SSD time over retrain time ({result['model']}): {result['ssd_over_retrain']:.3f}")
    lines.append("Dr/Df: retain/forget accuracy on the test split (%); MIA as in the SSD paper (%); gap: mean absolute "
                 "difference from retrain over Dr, Df and MIA (points).")
    if any(row.get("source", "trained") != "trained" for row in result["rows"]):
        lines.append("*: the retrained model was read from disk (shipped or cached); its seconds are its recorded "
                     "training time.")
    return "\n".join(lines)
