"""What a slider move costs on the Unlearn page, and the first forget request on real data.

    python bench/bench_live.py --json -          # digits, shapes and (when its files are present) Fashion-MNIST

- ``dampen_eval_ms``: per dataset, ``{median_ms, p95_ms}`` over 30 moves to settings not evaluated before
  (α up a log ladder at λ = 1), each measuring everything the page's six cards show: dampen into the
  session's scratch model, the logits of the images the cards read (every one on digits; on shapes and
  Fashion-MNIST the live sample of at most UNLEARNING_LAB_LIVE_SAMPLE = 200 images per card, as the page and
  ``unlearn --eval-sample 200``), forget/retain x train/test accuracy and the MIA (the "Dampened" card comes
  with the dampening). Targets (#25): median <= 10 ms on digits, p95 <= 300 ms on shapes and Fashion-MNIST.
- ``first_request_fashion_mnist``: ``{seconds, epoch_seconds, over_epoch}``, the first forget request
  (class 0, automatic α with the guard) with the shipped model, I_D and (since they ship) the class's I_f
  over one plain training epoch (target <= 10).
- ``dampen_eval_ms_every_layer``: the same moves without skipping the layers before the first changed one
  (what ``ssd_core.prefix`` saves).
- ``dampen_eval_ms_all_images``: where the page reads a sample, the same moves (10) on every image, for
  comparison (what the page's "All images" button costs).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.engine import SSDEngine
from ssd_core.methods import run_method
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import Evaluator, live_sample_size, to_channels_last
from ssd_core.train import TrainConfig, estimate_training_seconds, find_checkpoint, load_or_train

CASES = (("digits", "smallcnn", 3), ("shapes", "resnet18_narrow", 2), ("fashion_mnist", "smallcnn", 0))


def _percentile_95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def dampen_eval_ms(dataset_name: str, model_name: str, cls: int, moves: int = 30, device: str = "cpu",
                   sample: int | None | str = "page", shortcut: bool = True) -> dict:
    """Median and p95 ms of a move to a new setting. ``sample``: "page" reads what the page reads (every image on
    small data, else the live sample, :func:`ssd_core.metrics.live_sample_size`); None every image; a number
    every card on a fixed stratified sample of at most that many images (``unlearn --eval-sample``).
    ``shortcut``: skip the layers before the first changed one, as the page does (``Evaluator(shortcut_from=)``)."""
    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device=device).model.to(device)
    split = make_split(dataset, ForgetRequest("class", cls))
    imp = ssd_importances(model, split, device=device)
    engine = SSDEngine(model, imp.full, imp.forget)
    scratch = to_channels_last(copy.deepcopy(model))
    if sample == "page":
        sample = live_sample_size(split)
    evaluator = Evaluator(split, device, max_per_subset=sample if isinstance(sample, int) else None, stratified=True,
                          shortcut_from=model if shortcut else None)
    samples = []
    for i in range(moves):
        alpha = 10 ** (0.5 + 2.0 * i / moves)  # every move a setting not evaluated before
        start = time.perf_counter()
        damped, report = engine.at(alpha, 1.0, into=scratch)
        evaluator(damped, report.changed)
        samples.append((time.perf_counter() - start) * 1000)
    images = sum(evaluator.sizes().values())
    return {"median_ms": round(statistics.median(samples), 1), "p95_ms": round(_percentile_95(samples), 1),
            "moves": moves, "images_per_move": images, "per_card": sample}


def first_request_fashion_mnist(device: str = "cpu") -> dict | None:
    """The first request (class 0, assd) with the shipped model, I_D and I_f, over one plain training epoch."""
    try:
        dataset = load_dataset("fashion_mnist")
    except Exception:  # noqa: BLE001 - the files are optional (apt-get install dataset-fashion-mnist)
        return None
    model = load_or_train(dataset, "smallcnn", device=device).model
    config = TrainConfig.default("fashion_mnist", "smallcnn")
    epoch = estimate_training_seconds(dataset, config, device, probe_steps=20) / config.epochs
    split = make_split(dataset, ForgetRequest("class", 0))
    start = time.perf_counter()
    run_method("assd", model, split, device=device)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "epoch_seconds": round(epoch, 1), "over_epoch": round(seconds / epoch, 2)}


def fashion_present() -> bool:
    try:
        return find_checkpoint(load_dataset("fashion_mnist"), "smallcnn") is not None
    except Exception:  # noqa: BLE001
        return False


def run(device: str = "cpu", moves: int = 30) -> dict:
    cases = [c for c in CASES if c[0] != "fashion_mnist" or fashion_present()]
    out: dict = {"dampen_eval_ms": {f"{d}/{m}": dampen_eval_ms(d, m, c, moves, device) for d, m, c in cases}}
    out["dampen_eval_ms_every_layer"] = {f"{d}/{m}": dampen_eval_ms(d, m, c, moves, device, shortcut=False)
                                         for d, m, c in cases}
    out["dampen_eval_ms_all_images"] = {f"{d}/{m}": dampen_eval_ms(d, m, c, max(3, moves // 3), device, sample=None)
                                        for d, m, c in cases if live_sample_size(make_split(load_dataset(d),
                                                                                            ForgetRequest("class", c)))}
    first = first_request_fashion_mnist(device) if fashion_present() else None
    if first is not None:
        out["first_request_fashion_mnist"] = first
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--moves", type=int, default=30)
    parser.add_argument("--json", dest="json_path", default="-")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = json.dumps(run(args.device, args.moves), indent=2)
    if args.json_path == "-":
        print(text)
    else:
        Path(args.json_path).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
