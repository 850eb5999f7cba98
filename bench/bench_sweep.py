"""Seconds for a 10 x 10 alpha/lambda sweep (targets: digits/smallcnn < 5 s, shapes/resnet18_narrow < 15 s).

Each sweep runs with the landscape page's default evaluation bound (``ui.landscape.eval_bound_default``:
on digits only retain-train is sampled, 500 of 1,295; on shapes the Unlearn cards' sample, 200
class-stratified images per subset); digits is also timed with everything evaluated
(``seconds_full``), whose numbers equal single runs exactly.

    python bench/bench_sweep.py   # prints JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import Evaluator, live_sample_size
from ssd_core.sweep import MemoEvaluator, default_eval_bound, log_grid, sweep
from ssd_core.train import load_or_train

ALPHAS, LAMBDAS = log_grid(0.3, 300, 10), log_grid(0.03, 3, 10)


def _timed_sweep(model, imp, split, device: str, bound: int | None) -> dict:
    cards_sample = bound is not None and bound == live_sample_size(split)  # as the page: the cards' images
    evaluator = MemoEvaluator(Evaluator(split, device, max_per_subset=bound, stratified=cards_sample,
                                        shortcut_from=model))
    result = sweep(model, imp.full, imp.forget, split, ALPHAS, LAMBDAS, device=device, evaluator=evaluator)
    return {
        "seconds": result.seconds,
        "points": len(result.points),
        "distinct_models": len(evaluator.cache),
        "eval_sizes": result.eval_sizes,
        "pareto_points": len(result.pareto_points()),
    }


def run(device: str = "cpu") -> dict:
    results = {}
    for dataset_name, model_name, cls, with_full in (("digits", "smallcnn", 0, True), ("shapes", "resnet18_narrow", 2, False)):
        dataset = load_dataset(dataset_name)
        model = load_or_train(dataset, model_name, device=device).model.to(device)
        split = make_split(dataset, ForgetRequest("class", cls))
        imp = ssd_importances(model, split, device=device)
        bound = live_sample_size(split) or default_eval_bound(len(dataset.train_y))  # the page's default
        entry = _timed_sweep(model, imp, split, device, bound)
        if with_full:
            entry["seconds_full"] = _timed_sweep(model, imp, split, device, None)["seconds"]
        results[f"{dataset_name}/{model_name}"] = entry
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
