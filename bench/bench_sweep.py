"""Seconds for a 10 x 10 alpha/lambda sweep (targets: digits/smallcnn < 5 s, shapes/resnet18_narrow < 60 s).

    python bench/bench_sweep.py   # prints JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.data import ForgetRequest, load_dataset, make_split  # noqa: E402
from ssd_core.methods.ssd import ssd_importances  # noqa: E402
from ssd_core.sweep import log_grid, sweep  # noqa: E402
from ssd_core.train import load_or_train  # noqa: E402

# Evaluation bound used by the dashboard for datasets larger than the embedded digits.
SHAPES_EVAL_PER_SUBSET = 250


def run(device: str = "cpu") -> dict:
    results = {}
    for dataset_name, model_name, cls, bound in (("digits", "smallcnn", 0, None), ("shapes", "resnet18_narrow", 2, SHAPES_EVAL_PER_SUBSET)):
        dataset = load_dataset(dataset_name)
        model = load_or_train(dataset, model_name, device=device).model.to(device)
        split = make_split(dataset, ForgetRequest("class", cls))
        imp = ssd_importances(model, split, device=device)
        result = sweep(model, imp.full, imp.forget, split, log_grid(0.3, 300, 10), log_grid(0.03, 3, 10), device=device, max_eval_per_subset=bound)
        results[f"{dataset_name}/{model_name}"] = {
            "seconds": result.seconds,
            "points": len(result.points),
            "eval_sizes": result.eval_sizes,
            "pareto_points": len(result.pareto_points()),
        }
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
