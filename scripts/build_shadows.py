"""Train the shipped LiRA shadow models (run when training, the data or the shadow plan changes).

    .venv/bin/python scripts/build_shadows.py                       # everything missing
    .venv/bin/python scripts/build_shadows.py fashion_mnist/smallcnn

Writes ssd_core/checkpoints/shipped/<key>.lira.safetensors (package data): the shadows' membership masks
and logit-scaled confidences, the file ssd_core.audit.find_shadows looks for. How many shadows and how
they are trained is ssd_core.audit.lira.shadow_plan's (digits: 16 like the original; Fashion-MNIST: 8,
trained for fewer epochs). Seeded: the same code and data give the same file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.audit.lira import build_shadows, save_shadows, shadow_key, shadow_plan
from ssd_core.data import load_dataset
from ssd_core.train import SHIPPED_CHECKPOINTS, TrainConfig

SHIPPED = [("digits", "smallcnn"), ("fashion_mnist", "smallcnn")]


def main(only: list[str]) -> None:
    for dataset_name, model_name in SHIPPED:
        if only and f"{dataset_name}/{model_name}" not in only:
            continue
        dataset = load_dataset(dataset_name)
        plan = shadow_plan(dataset, model_name)
        key = shadow_key(dataset, model_name, plan.config, 0, plan.count)
        path = SHIPPED_CHECKPOINTS / f"{key}.lira.safetensors"
        if path.exists():
            print(f"{key}: already shipped")
            continue
        start = time.perf_counter()
        shadows = build_shadows(dataset, model_name, device="cpu", cache=False, config=TrainConfig(**plan.config),
                                progress=lambda f, m: print(f"{f:5.0%} {m}", flush=True) if m.startswith("shadow") else None)
        shadows.source = "shipped"
        save_shadows(shadows, path)
        print(f"{key}: {plan.count} shadows ({plan.config['epochs']} epochs each) in "
              f"{time.perf_counter() - start:.1f}s, {path.stat().st_size / 1e3:.0f} KB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
