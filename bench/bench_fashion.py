"""Fashion-MNIST with the shipped models: the default unlearning (automatic alpha: adaptive SSD and the
collapse guard) on every class and on random requests, and the first request's cost against an epoch.

    python bench/bench_fashion.py                               # smallcnn, every class, prints JSON
    python bench/bench_fashion.py --model resnet18_narrow --classes 0,6
    python bench/bench_fashion.py --random 60,600               # random requests (seed 0)
    python bench/bench_fashion.py --method alfssd --classes 1,7  # another automatic method (loss-free importance)

Per request: forget-test and retain-test accuracy before and after (the full test split), the retain
drop in points, the alpha and lambda used, whether the guard corrected the adaptive alpha, its sentence
when the class cannot be forgotten, and the method's seconds (I_f, guard, dampening). ``epoch_seconds``
is one plain training epoch of the same model here (timed on 20 batches, scaled), so ``over_epoch`` is
the request's seconds over it (the issue's target: 10 or less).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.guard import GuardFix
from ssd_core.methods import run_method
from ssd_core.train import TrainConfig, accuracy, estimate_training_seconds, load_or_train


def one_request(model, dataset, request: ForgetRequest, method: str = "assd") -> dict:
    split = make_split(dataset, request)
    before = {"forget_test": accuracy(model, split.forget_test), "retain_test": accuracy(model, split.retain_test)}
    start = time.perf_counter()
    result = run_method(method, model, split, device="cpu")
    seconds = time.perf_counter() - start
    after = {"forget_test": accuracy(result.model, split.forget_test),
             "retain_test": accuracy(result.model, split.retain_test)}
    diagnostics = result.diagnostics
    guard = diagnostics.get("guard") or {}
    fix = guard.get("fix")
    row = {
        "request": request.describe(), "before": before, "after": after,
        "retain_drop_points": round(100 * (before["retain_test"] - after["retain_test"]), 2),
        "alpha": diagnostics["alpha"], "lam": diagnostics.get("lam", 1.0), "corrected": bool(guard.get("applied")),
        "seconds": round(seconds, 2), "steps": {k: round(v, 2) for k, v in result.seconds.items()},
        "full_importance_cached": diagnostics.get("full_importance_cached"),
    }
    if fix is not None and fix.get("kept") and not fix.get("forgotten") and request.kind == "class":
        row["sentence"] = GuardFix.from_dict(fix, lam_asked=1.0).sentence()
    if request.kind == "class":
        row["forgotten"] = after["forget_test"] <= 0.05
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--random", default="", help="comma-separated k for random requests")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="assd", help="an automatic SSD method: assd (the default) or alfssd")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion_mnist")
    trained = load_or_train(dataset, args.model, device="cpu")
    model = trained.model
    epoch = estimate_training_seconds(dataset, TrainConfig.default("fashion_mnist", args.model), "cpu", probe_steps=20)
    epoch /= TrainConfig.default("fashion_mnist", args.model).epochs
    rows = []
    requests = [ForgetRequest("class", int(c)) for c in args.classes.split(",") if c.strip()]
    requests += [ForgetRequest("random", k=int(k), seed=0) for k in args.random.split(",") if k.strip()]
    for request in requests:
        row = one_request(model, dataset, request, args.method)
        row["over_epoch"] = round(row["seconds"] / epoch, 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    classes = [r for r in rows if "forgotten" in r]
    summary = {
        "model": args.model, "method": args.method, "model_source": trained.source, "test_acc": trained.test_acc,
        "epoch_seconds": round(epoch, 1),
        "classes_forgotten": sum(r["forgotten"] and r["retain_drop_points"] <= 3 for r in classes),
        "classes": len(classes), "rows": rows,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
