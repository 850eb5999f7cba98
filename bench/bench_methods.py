"""Seconds per unlearning method (default settings) on digits/smallcnn and shapes/resnet18_narrow.

    python bench/bench_methods.py                       # CPU, one thread, prints JSON
    python bench/bench_methods.py --devices cpu,cuda    # also on the GPU
    python bench/bench_methods.py --setups digits       # only digits/smallcnn

For each device and (dataset, model): the original model (shipped, cached or trained once), a
class request (digits: 3, shapes: 2) for every method that supports it, and 16 random training
samples (seed 0) for the instance-wise methods (l2ul). Per method: ``seconds`` (the method's own
total, what ``MethodResult.seconds["total"]`` reports, GPU synchronised), its per-step seconds,
and the forget/retain accuracies after (a sanity check that the timing is of a run that worked).

SSD is timed twice: ``ssd`` with a cold importance cache (I_D computed: the first request on a
model) and ``ssd_warm`` (I_D cached: every later request). ``ssd_over_retrain`` and
``ssd_warm_over_retrain`` are those seconds over retrain's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core import importance
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods import available_methods, run_method
from ssd_core.models import resolve_device
from ssd_core.train import accuracy, load_or_train

SETUPS = {"digits": ("digits", "smallcnn", 3), "shapes": ("shapes", "resnet18_narrow", 2)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(name: str, model, split, device: torch.device) -> dict:
    _sync(device)
    start = time.perf_counter()
    result = run_method(name, model, split, device=device)
    _sync(device)
    wall = time.perf_counter() - start
    row = {
        "seconds": round(result.seconds["total"], 3),
        "wall_seconds": round(wall, 3),
        "steps": {k: round(v, 3) for k, v in result.seconds.items() if k != "total"},
        "data_touched": result.data_touched,
        "request": split.request.describe(),
    }
    if split.request.kind == "class":
        row["forget_test_acc"] = round(accuracy(result.model, split.forget_test, device), 4)
        row["retain_test_acc"] = round(accuracy(result.model, split.retain_test, device), 4)
    else:
        row["forget_train_acc"] = round(accuracy(result.model, split.forget_train, device), 4)
        row["test_acc"] = round(accuracy(result.model, split.test, device), 4)
    return row


def run(devices: tuple[str, ...] | list[str] = ("cpu",), setups: tuple[str, ...] | list[str] = ("digits", "shapes"),
        methods: list[str] | None = None) -> dict:
    """{device: {dataset/model: {method: {...}, "ssd_over_retrain": ..., ...}}} (see module docstring)."""
    names = methods or [n for n in available_methods() if n != "ssd"] + ["ssd"]
    results: dict = {}
    for device_name in devices:
        device = resolve_device(device_name)
        per_device: dict = {}
        for setup in setups:
            dataset_name, model_name, forget_class = SETUPS[setup]
            dataset = load_dataset(dataset_name)
            trained = load_or_train(dataset, model_name, seed=0, device=device)
            model = trained.model.to(device).eval()
            class_split = make_split(dataset, ForgetRequest("class", forget_class))
            instance_split = make_split(dataset, ForgetRequest("random", k=16, seed=0))
            rows: dict = {
                "original": {
                    "source": trained.source,
                    "forget_test_acc": round(accuracy(model, class_split.forget_test, device), 4),
                    "retain_test_acc": round(accuracy(model, class_split.retain_test, device), 4),
                }
            }
            saved_cache = importance._default_cache
            importance._default_cache = importance.ImportanceCache(None)  # memory only: SSD's first run is cold
            try:
                for name in names:
                    spec = available_methods()[name]
                    split = class_split if "class" in spec.supports else instance_split
                    rows[name] = _timed(name, model, split, device)
                    print(f"{device}/{setup}/{name}: {rows[name]['seconds']:.2f} s", file=sys.stderr, flush=True)
                    if name == "ssd":
                        rows["ssd_warm"] = _timed(name, model, split, device)
            finally:
                importance._default_cache = saved_cache
            if "retrain" in rows and "ssd" in rows:
                rows["ssd_over_retrain"] = round(rows["ssd"]["seconds"] / rows["retrain"]["seconds"], 4)
                rows["ssd_warm_over_retrain"] = round(rows["ssd_warm"]["seconds"] / rows["retrain"]["seconds"], 4)
            per_device[f"{dataset_name}/{model_name}"] = rows
        results[str(device)] = per_device
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu", help="comma list, e.g. cpu,cuda")
    parser.add_argument("--setups", default="digits,shapes", help="comma list of: " + ", ".join(SETUPS))
    parser.add_argument("--methods", default="", help="comma list (default: all registered)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the lab machines are shared)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = run(
        [d for d in args.devices.split(",") if d],
        [s for s in args.setups.split(",") if s],
        [m for m in args.methods.split(",") if m] or None,
    )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
