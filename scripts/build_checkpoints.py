"""Train the shipped checkpoints (run once when a default model or its training config changes).

    .venv/bin/python scripts/build_checkpoints.py

Writes ssd_core/checkpoints/shipped/<key>.safetensors + <key>.json (package data), the key being the one
ssd_core.train.load_or_train looks for, so a first run of the app or CLI trains nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.data import load_dataset
from ssd_core.train import SHIPPED_CHECKPOINTS, TrainConfig, checkpoint_key, save_checkpoint, train_model

# smallcnn is the digits default; on shapes it underfits (36% test), so shapes ships resnet18_narrow (98%).
SHIPPED = [("digits", "smallcnn"), ("digits", "vit_tiny"), ("shapes", "resnet18_narrow")]


def main() -> None:
    SHIPPED_CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    for dataset_name, model_name in SHIPPED:
        dataset = load_dataset(dataset_name)
        config = TrainConfig.default(dataset_name, model_name, seed=0)
        key = checkpoint_key(dataset, config)
        if (SHIPPED_CHECKPOINTS / f"{key}.safetensors").exists():
            print(f"{key}: already shipped")
            continue
        trained = train_model(dataset, config, device="cpu")
        save_checkpoint(trained, SHIPPED_CHECKPOINTS / key, dataset.fingerprint())
        print(f"{key}: test accuracy {trained.test_acc:.4f}, {trained.seconds:.1f}s")


if __name__ == "__main__":
    main()
