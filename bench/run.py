"""Benchmarks of the engine; prints (and with --json writes) one JSON object.

    python bench/run.py --json bench/results.json            # CPU figures
    python bench/run.py --device cuda --json bench/gpu.json  # GPU figures + full-width ResNet-18
    python bench/run.py --with methods,browser               # also the method and browser benches

Figures (targets from the issues):
- importance_over_epoch: seconds for I_D + I_f with ssd_core over seconds for one plain
  forward+backward pass over the same samples, same batch size, no optimizer (target <= 1.15).
- second_request_speedup: first forget request (I_D computed) over a second one for another
  class (I_D cached) (target >= 5 on digits).
- dampen_eval_ms, dampen_eval_ms_all_images, first_request_fashion_mnist: bench/bench_live.py (a slider move
  as the page makes it on digits, shapes and Fashion-MNIST, every card; targets median <= 10 ms on digits,
  p95 <= 300 ms on shapes and Fashion-MNIST; the first Fashion-MNIST request over an epoch, target <= 10).
- mia_ms, evaluate_ms, train_seconds for the embedded defaults.
- auto_alpha: a slider move as the page makes it (dampen, evaluate every subset) with automatic
  alpha over one without (the adaptive percentile from the cached ratios, the guard's check read
  from the same logits; target <= 1.5), and the guard's search after a collapse at alpha 10
  (targets: 0.5 s on digits class 3, 5 s on shapes class 0).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.dampening import adaptive_alpha, dampen, finite_ratios
from ssd_core.data import ForgetRequest, Subset, batches, load_dataset, load_shapes, make_split
from ssd_core.guard import CollapseGuard
from ssd_core.importance import ImportanceCache, compute_importance
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import entropy, evaluate, evaluate_outputs, logits_of, mia_from_entropies, split_outputs, to_channels_last
from ssd_core.models import build_for_dataset, resolve_device
from ssd_core.train import TrainConfig, load_or_train, train_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_pass_seconds(model, subset: Subset, batch_size: int, device: torch.device) -> float:
    """One forward+backward over ``subset`` (eval mode, batch-mean CE, no optimizer)."""
    model.eval()
    _sync(device)
    start = time.perf_counter()
    for x, y in batches(subset, batch_size, device):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    _sync(device)
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def importance_seconds(model, subset: Subset, batch_size: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    compute_importance(model, subset, "fisher", batch_size, device)
    _sync(device)
    return time.perf_counter() - start


def importance_over_epoch(model, split, device: torch.device, batch_size: int = 64, repeats: int = 3) -> dict:
    """Ratio of I_D + I_f time to a plain pass over D + Df (best of ``repeats`` for each, interleaved)."""
    model = model.to(device)
    plain_pass_seconds(model, split.forget_train, batch_size, device)  # warm-up
    importance_seconds(model, split.forget_train, batch_size, device)
    ours, plain = [], []
    for _ in range(repeats):
        plain.append(sum(plain_pass_seconds(model, subset, batch_size, device) for subset in (split.train, split.forget_train)))
        ours.append(sum(importance_seconds(model, subset, batch_size, device) for subset in (split.train, split.forget_train)))
    return {"ratio": min(ours) / min(plain), "importance_seconds": min(ours), "plain_pass_seconds": min(plain),
            "samples": len(split.train) + len(split.forget_train)}


def second_request_speedup(model, dataset, device: torch.device) -> dict:
    cache = ImportanceCache(directory=None)
    times = []
    for cls in (3, 5):
        split = make_split(dataset, ForgetRequest("class", cls))
        start = time.perf_counter()
        imp = ssd_importances(model, split, device=device, cache=cache)
        dampen(model, imp.full, imp.forget, 10.0, 1.0, with_statistics=False)
        times.append(time.perf_counter() - start)
    return {"speedup": times[0] / times[1], "first_seconds": times[0], "second_seconds": times[1]}


def mia_and_evaluate_ms(model, split, device: torch.device, repeats: int = 5) -> dict:
    train_entropy = entropy(logits_of(model, split.train, device))
    test_entropy = entropy(logits_of(model, split.test, device))
    mia, full = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        mia_from_entropies(train_entropy[split.retain_train.indices], test_entropy, train_entropy[split.forget_train.indices])
        mia.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        evaluate(model, split, device)
        full.append((time.perf_counter() - start) * 1000)
    return {"mia_ms": statistics.median(mia), "evaluate_ms": statistics.median(full)}


def auto_alpha_figures(device: torch.device, moves: int = 15) -> dict:
    out = {}
    for dataset_name, model_name, cls in (("digits", "smallcnn", 3), ("shapes", "resnet18_narrow", 0)):
        dataset = load_dataset(dataset_name)
        model = load_or_train(dataset, model_name, device=device).model.to(device)
        split = make_split(dataset, ForgetRequest("class", cls))
        imp = ssd_importances(model, split, device=device)
        ratios = finite_ratios(imp.full, imp.forget)  # the page computes them once per run
        guard = CollapseGuard(model, split.retain_train, split.forget_train, device, whole_classes=True,
                              cache=False)  # the search itself is timed
        scratch = to_channels_last(copy.deepcopy(model))
        chosen = adaptive_alpha(imp.full, imp.forget, len(split.forget_train), len(split.train), ratios=ratios)
        manual, auto = [], []
        for i in range(moves):
            lam = 0.5 + 0.1 * i
            start = time.perf_counter()
            damped, _ = dampen(model, imp.full, imp.forget, chosen.alpha, lam, into=scratch, with_statistics=False)
            evaluate_outputs(split_outputs(damped, split, device), split, with_mia=True)
            _sync(device)
            manual.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            setting = adaptive_alpha(imp.full, imp.forget, len(split.forget_train), len(split.train), ratios=ratios)
            damped, _ = dampen(model, imp.full, imp.forget, setting.alpha, lam, into=scratch, with_statistics=False)
            outputs = split_outputs(damped, split, device)
            evaluate_outputs(outputs, split, with_mia=True)
            guard.check_logits(outputs.train_logits, setting.alpha, lam)
            _sync(device)
            auto.append((time.perf_counter() - start) * 1000)
        searches = [guard.fix(model, imp.full, imp.forget, 10.0, 1.0, scratch=scratch) for _ in range(3)]
        fix = searches[-1]
        out[f"{dataset_name}/{model_name}/class{cls}"] = {
            "manual_move_ms": statistics.median(manual), "auto_move_ms": statistics.median(auto),
            "auto_over_manual": statistics.median(auto) / statistics.median(manual),
            "guard_search_seconds": statistics.median(f.seconds for f in searches), "guard_probes": fix.probes,
            "guard_alpha_from_10": fix.alpha, "adaptive_alpha": chosen.alpha,
        }
    return out


def cpu_figures(device: torch.device) -> dict:
    digits = load_dataset("digits")
    shapes = load_dataset("shapes")
    digits_model = load_or_train(digits, "smallcnn", device=device).model.to(device)
    shapes_model = load_or_train(shapes, "resnet18_narrow", device=device).model.to(device)
    digits_split = make_split(digits, ForgetRequest("class", 3))
    shapes_split = make_split(shapes, ForgetRequest("class", 2))
    start = time.perf_counter()
    train_model(digits, TrainConfig.default("digits", "smallcnn"), device=device)
    digits_train = time.perf_counter() - start
    return {
        "importance_over_epoch": {
            "digits/smallcnn": importance_over_epoch(digits_model, digits_split, device),
            "shapes/resnet18_narrow": importance_over_epoch(shapes_model, shapes_split, device, repeats=2),
        },
        "second_request_speedup": {"digits/smallcnn": second_request_speedup(digits_model, digits, device)},
        **{k: {"digits/smallcnn": v} for k, v in mia_and_evaluate_ms(digits_model, digits_split, device).items()},
        "train_seconds": {"digits/smallcnn": digits_train},
        "auto_alpha": auto_alpha_figures(device),
    }


def gpu_full_width(device: torch.device, n_images: int = 50_000) -> dict:
    """ResNet-18 at full width on 50,000 generated 32x32 images (importance vs a plain pass)."""
    data = load_shapes(n_train=n_images, n_test=1000, seed=1)
    model = build_for_dataset("resnet18", data, seed=0).to(device)
    split = make_split(data, ForgetRequest("class", 0))
    return importance_over_epoch(model, split, device, batch_size=64, repeats=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--with", dest="extra", default="", help="comma list: methods, browser")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results: dict = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        results["gpu"] = torch.cuda.get_device_name(device)
    results.update(cpu_figures(device))
    import bench_live  # bench/ is on sys.path when run as a script

    results.update(bench_live.run(str(device)))
    if device.type == "cuda":
        results["importance_over_epoch"]["generated50k/resnet18"] = gpu_full_width(device)
    import bench_sweep  # bench/ is on sys.path when run as a script

    results["sweep_10x10"] = bench_sweep.run(str(device))
    extra = {e.strip() for e in args.extra.split(",") if e.strip()}
    if "methods" in extra:
        import bench_methods

        results["methods"] = bench_methods.run()
    if "browser" in extra:
        import bench_browser

        results["browser"] = bench_browser.run()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
