"""Train the shipped checkpoints and their full-data importances (run once when a default model, its
training config or the importance code changes).

    .venv/bin/python scripts/build_checkpoints.py            # everything missing
    .venv/bin/python scripts/build_checkpoints.py fashion_mnist/smallcnn

Writes ssd_core/checkpoints/shipped/<key>.safetensors + <key>.json (package data), the key being the one
ssd_core.train.load_or_train looks for, so a first run of the app or CLI trains nothing; and, for the
models in SHIPPED_IMPORTANCE, I_D (SSD's Fisher and LFSSD's loss-free importance at batch size 64) under
shipped/importance/<cache key>.safetensors, so a first forget request costs the forget set's pass only,
and for SHIPPED_FORGET_IMPORTANCE_FOR every class's I_f too, so a first class request costs no pass at all;
and, for SHIPPED_RETRAINED_FOR, the model retrained without each class (the original's schedule and seed)
under shipped/retrained/<key>, so Compare's retrain row and the audit's reference cost a file read;
and, for SHIPPED_OUTPUTS_FOR, the original's logits on every image under shipped/outputs/<key> (see
ssd_core.original_outputs), so a "before" on every image costs a file read and a check of two batches;
and, for SHIPPED_GUARD_FOR, the collapse guard's search from automatic alpha (lambda 1) for every class that
needs one under shipped/guard/<key>.json (see ssd_core.guard_cache), so that first screen costs one probe.
Seeded (seed 0): the same code and data give the same files. The JSON records test accuracy and the
training seconds; the importance's seconds and images/s are printed.
Fashion-MNIST is read where the loader finds it (Debian's dataset-fashion-mnist, or the lab's data folder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.importance import SHIPPED_IMPORTANCE, ImportanceCache
from ssd_core.models import build_for_dataset
from ssd_core.train import (
    SHIPPED_CHECKPOINTS,
    TrainConfig,
    architecture_signature,
    checkpoint_key,
    load_or_train,
    retrain_from_scratch,
    retrained_key,
    save_checkpoint,
    train_model,
)

# smallcnn is the digits default; on shapes it underfits (36% test), so shapes ships resnet18_narrow (98%).
# Fashion-MNIST ships smallcnn (its default, 92.7%) and resnet18_narrow (the stronger model, 93.47% with its
# Fashion-MNIST schedule, train.DATASET_SCHEDULES: 15 epochs of AdamW, weight decay 0.05; 2,658 s).
SHIPPED = [
    ("digits", "smallcnn"), ("digits", "vit_tiny"), ("shapes", "resnet18_narrow"),
    ("fashion_mnist", "smallcnn"), ("fashion_mnist", "resnet18_narrow"),
]
# Originals of further training seeds, for `audit --train-seeds N` (each a seeded run of the default schedule).
SHIPPED_TRAIN_SEEDS = {("digits", "smallcnn"): (1, 2)}
SHIPPED_IMPORTANCE_FOR = [("fashion_mnist", "smallcnn"), ("fashion_mnist", "resnet18_narrow"), ("shapes", "resnet18_narrow")]
# I_f of every class, for the dashboard's default estimator: Fashion-MNIST's first screen then needs no importance
# pass (6,000 images, 2.3-5.5 s on 2 cores); 638 kB a class. Not for shapes: 2.8 MB a class to save 0.9 s.
SHIPPED_FORGET_IMPORTANCE_FOR = {("fashion_mnist", "smallcnn"): ("fisher",)}
# The classes whose retrained model ships: every Fashion-MNIST class for smallcnn. Each costs one training run of
# the original's schedule (338-611 s on a quiet 2-core machine, 706-1,664 s while other work ran).
SHIPPED_RETRAINED_FOR = {("fashion_mnist", "smallcnn"): tuple(range(10))}
# The original's logits on every image: a CLI run's "before" and the page's first "All images" on Fashion-MNIST
# cost about 10 s of passes without them (2.8 MB); shapes' are 240 kB.
SHIPPED_OUTPUTS_FOR = [("fashion_mnist", "smallcnn"), ("shapes", "resnet18_narrow")]
# The guard's search from automatic α at λ = 1 for every class that needs one: 3.4-10 s before the first screen of
# eight Fashion-MNIST classes (all but 3 and 4) and 2.1 s for shapes class 0; a file read and one probe with it.
# About 400 bytes a class.
SHIPPED_GUARD_FOR = [("fashion_mnist", "smallcnn"), ("shapes", "resnet18_narrow")]
IMPORTANCE_ESTIMATORS = ("fisher", "lossfree")
IMPORTANCE_BATCH = 64


def build_checkpoint(dataset_name: str, model_name: str, seed: int = 0) -> None:
    dataset = load_dataset(dataset_name)
    config = TrainConfig.default(dataset_name, model_name, seed=seed)
    key = checkpoint_key(dataset, config)
    if (SHIPPED_CHECKPOINTS / f"{key}.safetensors").exists():
        print(f"{key}: already shipped")
        return
    trained = train_model(dataset, config, device="cpu")
    save_checkpoint(trained, SHIPPED_CHECKPOINTS / key, dataset.fingerprint())
    images = len(dataset.train_y) * config.epochs
    print(f"{key}: test accuracy {trained.test_acc:.4f}, {trained.seconds:.1f}s ({images / trained.seconds:.0f} images/s)")


def build_importance(dataset_name: str, model_name: str) -> None:
    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device="cpu").model
    cache = ImportanceCache(SHIPPED_IMPORTANCE)
    for estimator in IMPORTANCE_ESTIMATORS:
        key = cache.key(model, f"{dataset.fingerprint()}-train", estimator, IMPORTANCE_BATCH)
        if (SHIPPED_IMPORTANCE / f"{key}.safetensors").exists():
            print(f"I_D {key}: already shipped")
            continue
        start = time.perf_counter()
        cache.full_importance(model, dataset.train(), f"{dataset.fingerprint()}-train", estimator,
                              IMPORTANCE_BATCH, device="cpu")
        seconds = time.perf_counter() - start
        print(f"I_D {key}: {seconds:.1f}s ({len(dataset.train_y) / seconds:.0f} images/s)")


def forget_importance_keys(dataset_name: str, model_name: str) -> dict[tuple[int, str], str]:
    """(class, estimator) -> the cache key of that class's I_f, for what SHIPPED_FORGET_IMPORTANCE_FOR lists."""
    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device="cpu").model
    data_key = f"{dataset.fingerprint()}-train"
    keys = {}
    for target in range(dataset.num_classes):
        forget = make_split(dataset, ForgetRequest("class", target=target)).forget_train
        for estimator in SHIPPED_FORGET_IMPORTANCE_FOR[(dataset_name, model_name)]:
            keys[(target, estimator)] = ImportanceCache.key(model, ImportanceCache.forget_data_key(data_key, forget),
                                                           estimator, IMPORTANCE_BATCH)
    return keys


def build_forget_importance(dataset_name: str, model_name: str) -> None:
    """I_f of every class, computed as the dashboard computes it (ssd_importances) into the shipped folder."""
    from ssd_core.methods.ssd import ssd_importances

    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device="cpu").model
    cache = ImportanceCache(SHIPPED_IMPORTANCE)
    for (target, estimator), key in forget_importance_keys(dataset_name, model_name).items():
        if (SHIPPED_IMPORTANCE / f"{key}.safetensors").exists():
            print(f"I_f class {target} {key}: already shipped")
            continue
        split = make_split(dataset, ForgetRequest("class", target=target))
        found = ssd_importances(model, split, estimator, IMPORTANCE_BATCH, device="cpu", cache=cache)
        print(f"I_f class {target} {key}: {found.forget_seconds:.1f}s "
              f"({len(split.forget_train) / found.forget_seconds:.0f} images/s)", flush=True)


def build_guard(dataset_name: str, model_name: str) -> None:
    """The guard's search for every class whose automatic α (λ = 1) needs one, as ``assd`` and the page run it.
    Its key holds the code of guard.py and dampening.py: after editing them, delete shipped/guard/ and run this."""
    from ssd_core.dampening import finite_ratios
    from ssd_core.guard import CollapseGuard, adaptive_alpha
    from ssd_core.guard_cache import SHIPPED_GUARD, fix_key, save_fix
    from ssd_core.methods.ssd import ssd_importances

    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device="cpu").model
    for target in range(len(dataset.classes)):
        split = make_split(dataset, ForgetRequest("class", target=target))
        found = ssd_importances(model, split, "fisher", IMPORTANCE_BATCH, device="cpu")
        guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu", whole_classes=True, cache=False)
        alpha = adaptive_alpha(found.full, found.forget, len(split.forget_train), len(split.train),
                               ratios=finite_ratios(found.full, found.forget)).alpha
        check = guard.check_setting(model, found.full, found.forget, alpha, 1.0)
        if not (check.fired or check.incomplete):
            print(f"guard class {target}: automatic alpha {alpha:.3g} needs no search")
            continue
        path = SHIPPED_GUARD / f"{fix_key(guard, model, found.full, found.forget, alpha, 1.0)}.json"
        fix = guard.fix(model, found.full, found.forget, alpha, 1.0)
        save_fix(fix, path)
        print(f"guard class {target}: {fix.setting()} after {fix.probes} probes, {fix.seconds:.1f}s", flush=True)


def retrained_stems(dataset_name: str, model_name: str) -> dict[int, str]:
    """Class index -> file stem of the model retrained without that class (seed 0, default schedule), for the
    classes SHIPPED_RETRAINED_FOR lists."""
    dataset = load_dataset(dataset_name)
    config = TrainConfig.default(dataset_name, model_name, seed=0)
    architecture = architecture_signature(build_for_dataset(model_name, dataset))
    return {c: retrained_key(f"{dataset.fingerprint()}-train", architecture, config,
                             make_split(dataset, ForgetRequest("class", target=c)).retain_train)
            for c in SHIPPED_RETRAINED_FOR[(dataset_name, model_name)]}


def build_retrained(dataset_name: str, model_name: str) -> None:
    dataset = load_dataset(dataset_name)
    config = TrainConfig.default(dataset_name, model_name, seed=0)
    folder = SHIPPED_CHECKPOINTS / "retrained"
    for target, stem in retrained_stems(dataset_name, model_name).items():
        if (folder / f"{stem}.safetensors").exists():
            print(f"retrained without class {target} {stem}: already shipped")
            continue
        split = make_split(dataset, ForgetRequest("class", target=target))
        trained = retrain_from_scratch(dataset, split.retain_train, config, data_key=f"{dataset.fingerprint()}-train",
                                       device="cpu", cache=False, test=dataset.test())
        save_checkpoint(trained, folder / stem, f"{dataset.fingerprint()}-train")
        images = len(split.retain_train) * config.epochs
        print(f"retrained without class {target} {stem}: test accuracy {trained.test_acc:.4f}, "
              f"{trained.seconds:.1f}s ({images / trained.seconds:.0f} images/s)", flush=True)


def build_outputs(dataset_name: str, model_name: str) -> None:
    from ssd_core.metrics import split_outputs
    from ssd_core.original_outputs import SHIPPED_OUTPUTS, outputs_key, save_outputs

    dataset = load_dataset(dataset_name)
    model = load_or_train(dataset, model_name, device="cpu").model
    split = make_split(dataset, ForgetRequest("class", target=0))  # every split holds the whole train and test set
    path = SHIPPED_OUTPUTS / f"{outputs_key(model, split, 'cpu')}.safetensors"
    if path.exists():
        print(f"logits {path.stem}: already shipped")
        return
    start = time.perf_counter()
    save_outputs(split_outputs(model, split, "cpu"), path)
    print(f"logits {path.stem}: {time.perf_counter() - start:.1f}s")


def main(only: list[str]) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    wanted = [pair for pair in SHIPPED if not only or "/".join(pair) in only]
    for dataset_name, model_name in wanted:
        build_checkpoint(dataset_name, model_name)
        for seed in SHIPPED_TRAIN_SEEDS.get((dataset_name, model_name), ()):
            build_checkpoint(dataset_name, model_name, seed)
        if (dataset_name, model_name) in SHIPPED_IMPORTANCE_FOR:
            build_importance(dataset_name, model_name)
        if (dataset_name, model_name) in SHIPPED_FORGET_IMPORTANCE_FOR:
            build_forget_importance(dataset_name, model_name)
        if (dataset_name, model_name) in SHIPPED_RETRAINED_FOR:
            build_retrained(dataset_name, model_name)
        if (dataset_name, model_name) in SHIPPED_OUTPUTS_FOR:
            build_outputs(dataset_name, model_name)
        if (dataset_name, model_name) in SHIPPED_GUARD_FOR:
            build_guard(dataset_name, model_name)


if __name__ == "__main__":
    main(sys.argv[1:])
