"""Seconds for the audit (did it really forget?): shadow models, one full audit, seeds.

    python bench/bench_audit.py                   # digits/smallcnn, prints JSON
    python bench/bench_audit.py --with-shapes     # also shapes/resnet18_narrow (K 8, bounded sample; long on CPU)

digits: ``shadows_build_seconds`` (16 shadows trained from scratch, not the shipped file),
``audit_cold_seconds`` (assd run + retrained model trained + audit, shadows cached) and
``audit_warm_seconds`` (the same request again: the retrained model comes from the disk cache),
``seeds_5_seconds`` (assd over 5 seeds, retrained models cached after the first pass).
shapes: ``shapes_shadows_seconds`` (K 8) and ``shapes_audit_seconds`` (probe on 2,000 training
images, LiRA non-members at most 250).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--with-shapes", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["UNLEARNING_LAB_CACHE"] = tempfile.mkdtemp(prefix="bench-audit-")

    from ssd_core.audit import AuditConfig
    from ssd_core.audit.lira import build_shadows
    from ssd_core.audit.runner import audit_request
    from ssd_core.audit.seeds import seed_runs
    from ssd_core.data import ForgetRequest, load_dataset, make_split
    from ssd_core.train import load_or_train

    out: dict[str, float] = {"threads": args.threads}
    digits = load_dataset("digits")
    start = time.perf_counter()
    build_shadows(digits, "smallcnn", count=16, cache=False)
    out["shadows_build_seconds"] = time.perf_counter() - start
    split = make_split(digits, ForgetRequest("class", target=3))
    original = load_or_train(digits, "smallcnn").model
    for label in ("audit_cold_seconds", "audit_warm_seconds"):
        start = time.perf_counter()
        audit_request(original, split, "smallcnn", {"assd": {}})
        out[label] = time.perf_counter() - start
    start = time.perf_counter()
    seed_runs("assd", original, split, "smallcnn", seeds=5)
    out["seeds_5_seconds"] = time.perf_counter() - start
    if args.with_shapes:
        shapes = load_dataset("shapes")
        start = time.perf_counter()
        build_shadows(shapes, "resnet18_narrow", count=8)
        out["shapes_shadows_seconds"] = time.perf_counter() - start
        split = make_split(shapes, ForgetRequest("class", target=2))
        original = load_or_train(shapes, "resnet18_narrow").model
        start = time.perf_counter()
        audit_request(original, split, "resnet18_narrow", {"assd": {}}, shadows=8,
                      config=AuditConfig(probe_max_train=2000, max_non_members=250))
        out["shapes_audit_seconds"] = time.perf_counter() - start
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
