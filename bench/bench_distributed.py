"""Importance (I_D) throughput for 1 and 2 ranks (torch.distributed, gloo on CPU / NCCL on GPUs).

    python bench/bench_distributed.py                  # shapes/resnet18_narrow on the CPU
    python bench/bench_distributed.py --device cuda    # NCCL with one rank per GPU (2 if there are 2)

One rank: ``compute_importance`` in this process with all the machine's threads. Two ranks:
``torchrun --nproc_per_node 2 -m ssd_core importance`` with the threads split between them; its
``seconds`` is the importance alone (not start-up or loading). Prints images/s for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="shapes")
    parser.add_argument("--model", default="resnet18_narrow")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from ssd_core.data import load_dataset
    from ssd_core.importance import compute_importance
    from ssd_core.train import load_or_train

    cores = os.cpu_count() or 1
    dataset = load_dataset(args.dataset)
    model = load_or_train(dataset, args.model).model.to(args.device)
    torch.set_num_threads(cores)
    start = time.perf_counter()
    compute_importance(model, dataset.train(), "fisher", 64, args.device)
    one = time.perf_counter() - start
    env = {**os.environ, "UNLEARNING_LAB_CACHE": tempfile.mkdtemp(prefix="bench-dist-"),
           "OMP_NUM_THREADS": str(max(1, cores // 2)), "UNLEARNING_LAB_THREADS": str(max(1, cores // 2))}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "ssd_core",
                           "importance", "--dataset", args.dataset, "--model", args.model, "--device", args.device,
                           "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    two = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][0])["seconds"]
    n = len(dataset.train_y)
    print(json.dumps({"setup": f"{args.dataset}/{args.model}", "device": args.device, "images": n, "cores": cores,
                      "one_rank_images_per_s": n / one, "two_ranks_images_per_s": n / two,
                      "speedup": one / two}, indent=2))


if __name__ == "__main__":
    main()
