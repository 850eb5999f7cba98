"""Train the shipped LiRA shadow models for digits/smallcnn (run when training or the data changes).

    .venv/bin/python scripts/build_shadows.py

Writes ssd_core/checkpoints/shipped/<key>.lira.safetensors (package data): the 16 shadows'
membership masks and logit-scaled confidences, the file ssd_core.audit.find_shadows looks for.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataclasses import asdict

from ssd_core.audit.lira import LIRA_SHADOWS, build_shadows, save_shadows, shadow_key
from ssd_core.data import load_dataset
from ssd_core.train import SHIPPED_CHECKPOINTS, TrainConfig

SHIPPED = [("digits", "smallcnn")]


def main() -> None:
    for dataset_name, model_name in SHIPPED:
        dataset = load_dataset(dataset_name)
        config = TrainConfig.default(dataset_name, model_name, seed=0)
        key = shadow_key(dataset, model_name, asdict(config), 0, LIRA_SHADOWS)
        path = SHIPPED_CHECKPOINTS / f"{key}.lira.safetensors"
        if path.exists():
            print(f"{key}: already shipped")
            continue
        start = time.perf_counter()
        shadows = build_shadows(dataset, model_name, count=LIRA_SHADOWS, device="cpu", cache=False,
                                progress=lambda f, m: print(f"{f:5.0%} {m}", flush=True) if m.startswith("shadow") else None)
        shadows.source = "shipped"
        save_shadows(shadows, path)
        print(f"{key}: {LIRA_SHADOWS} shadows in {time.perf_counter() - start:.1f}s, {path.stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
