"""Training original models and retrain baselines, with an on-disk checkpoint cache.

A checkpoint is two files side by side: ``<key>.safetensors`` (the weights) and ``<key>.json``
(the training config, the dataset fingerprint and the test accuracy). The key is derived from the
config, so the same config finds the same file. Shipped checkpoints in ``checkpoints/shipped`` (package
data) are looked up first, then the user cache (``~/.cache/unlearning-lab`` or ``$UNLEARNING_LAB_CACHE``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageDataset, Subset, to_float
from .models import Classifier, build_for_dataset, get_spec, resolve_device
from .progress import PROGRESS_SECONDS, OptionalProgress, report

log = logging.getLogger(__name__)

# Inside the package (package data), so an installed copy finds them as the repository does.
# Part of every checkpoint key: bump it when a change to training (or to a model's definition)
# changes the weights it produces, so no cached model from older code is ever reused. Then
# rebuild the shipped checkpoints (scripts/build_checkpoints.py).
TRAINING_CODE_VERSION = 2
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints" / "shipped"

# Where one dataset needs another schedule than the architecture's own: (dataset, model) -> the fields that
# differ. resnet18_narrow's 12 epochs of Adam overfit Fashion-MNIST's 60,000 images (92.96% test); decoupled
# weight decay over 15 epochs is the schedule its shipped checkpoint was trained with.
DATASET_SCHEDULES: dict[tuple[str, str], dict[str, Any]] = {
    ("fashion_mnist", "resnet18_narrow"): {"epochs": 15, "optimizer": "adamw", "weight_decay": 0.05},
}


def cache_dir() -> Path:
    """Where trained models and importances are cached on disk."""
    from .settings import settings

    root = settings().cache_dir
    root.mkdir(parents=True, exist_ok=True)
    return root


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write a cache file through ``write(temporary path)`` and a rename, so a reader (another process) never sees
    half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.partial")
    write(partial)
    os.replace(partial, path)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (and so its cache key)."""

    dataset: str
    model: str
    epochs: int
    lr: float
    batch_size: int
    optimizer: str = "adam"
    weight_decay: float = 0.0
    seed: int = 0

    @classmethod
    def default(cls, dataset: str, model: str, seed: int = 0) -> TrainConfig:
        """The architecture's own schedule, with the dataset's changes (:data:`DATASET_SCHEDULES`)."""
        spec = get_spec(model)
        config = cls(dataset, model, spec.epochs, spec.lr, spec.batch_size, spec.optimizer, spec.weight_decay, seed)
        return replace(config, **DATASET_SCHEDULES.get((dataset, model), {}))

    def key(self, dataset_fingerprint: str, architecture: str = "") -> str:
        """Cache key: config + data + architecture signature (parameter names and shapes) + training code version."""
        payload = json.dumps({**asdict(self), "data": dataset_fingerprint, "arch": architecture,
                              "code": TRAINING_CODE_VERSION}, sort_keys=True)
        return f"{self.dataset}-{self.model}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


@dataclass
class TrainedModel:
    model: Classifier
    config: TrainConfig
    test_acc: float
    seconds: float
    source: str  # "trained", "shipped" or "cache"


def architecture_signature(model: nn.Module) -> str:
    """A short hash of the parameter/buffer names and shapes, so a changed architecture misses the cache."""
    layout = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    layout += ";" + ";".join(type(m).__name__ for m in model.modules())
    return hashlib.sha256(layout.encode()).hexdigest()[:8]


def make_optimizer(params, name: str, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """"sgd" (momentum 0.9), "adamw" or (anything else) Adam over ``params``."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    data: Subset,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: OptionalProgress = None,
    cosine: bool = True,
) -> nn.Module:
    """Plain supervised training in place (shuffled with ``seed``, cosine learning rate).

    Refuses (InputError) before the first step when the estimated peak memory of one training
    step is above the budget (see :mod:`ssd_core.memory`)."""
    from .memory import check_training_memory

    if len(data):
        check_training_memory(model, tuple(data.x.shape[1:]), min(batch_size, len(data)), type(getattr(model, "net", model)).__name__)
    device = torch.device(device)
    model.to(device).train()
    opt = make_optimizer(model.parameters(), optimizer, lr, weight_decay)
    n = len(data)
    steps_per_epoch = max(1, (n + batch_size - 1) // batch_size)
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if cosine else None
    generator = torch.Generator().manual_seed(seed)
    step = 0
    last_report = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2 and n > 1:
                continue  # BatchNorm cannot train on a single sample
            x = to_float(data.x[idx], device)
            y = data.y[idx].to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if progress is not None and time.perf_counter() - last_report > PROGRESS_SECONDS:
                # within the epoch too: a long epoch shows it moves, and the dashboard's Cancel (which acts
                # at the next progress call) stops it within about a second
                last_report = time.perf_counter()
                report(progress, step / total, f"epoch {epoch + 1}/{epochs}, step {step - epoch * steps_per_epoch}"
                       f"/{steps_per_epoch}")
        report(progress, step / total, f"epoch {epoch + 1}/{epochs}, loss {loss.item():.3f}")
        last_report = time.perf_counter()
    model.eval()
    return model


@torch.no_grad()
def accuracy(model: nn.Module, data: Subset, device: torch.device | str = "cpu", batch_size: int = 512) -> float:
    """Top-1 accuracy as a fraction (NaN for an empty subset)."""
    if len(data) == 0:
        return float("nan")
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x = to_float(data.x[start : start + batch_size], device)
        correct += int((model(x).argmax(1).cpu() == data.y[start : start + batch_size]).sum())
    return correct / len(data)


def train_model(
    dataset: ImageDataset,
    config: TrainConfig,
    *,
    data: Subset | None = None,
    device: str | torch.device = "auto",
    progress: OptionalProgress = None,
) -> TrainedModel:
    """Train a fresh, seeded model on ``data`` (default: the whole training split).

    Args:
        dataset: the dataset (architecture input shape, test accuracy).
        config: architecture, schedule and seed.
        data: what to train on (default: the whole training split).
        device: where to train.
        progress: ``progress(fraction, message)`` callback.

    Returns:
        The trained model in eval mode with its test accuracy and training seconds.
    """
    return _train_fresh(dataset, config, data if data is not None else dataset.train(), device, progress,
                        dataset.test())


def _train_fresh(dataset: Any, config: TrainConfig, data: Subset, device: str | torch.device,
                 progress: OptionalProgress, test: Subset | None) -> TrainedModel:
    """A fresh seeded ``config.model`` fitted on ``data``, timed, with its accuracy on ``test`` (NaN without)."""
    device = resolve_device(device) if isinstance(device, str) else device
    start = time.perf_counter()
    model = build_for_dataset(config.model, dataset, seed=config.seed)
    fit(model, data, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, optimizer=config.optimizer,
        weight_decay=config.weight_decay, seed=config.seed, device=device, progress=progress)
    seconds = time.perf_counter() - start
    test_acc = accuracy(model, test, device) if test is not None else float("nan")
    return TrainedModel(model.cpu().eval(), config, test_acc, seconds, "trained")


def estimate_training_seconds(
    dataset: ImageDataset, config: TrainConfig, device: str | torch.device = "cpu", probe_steps: int = 3
) -> float:
    """About how long :func:`train_model` takes for ``config`` here: a few timed training steps on
    real batches (after one warm-up step), scaled to the whole schedule. Costs well under a second
    for the registry's models on the embedded data; the trained weights are thrown away."""
    device = resolve_device(device) if isinstance(device, str) else device
    model = build_for_dataset(config.model, dataset, seed=config.seed).to(device).train()
    opt = make_optimizer(model.parameters(), config.optimizer, config.lr, config.weight_decay)
    n = len(dataset.train_y)
    batch = min(config.batch_size, n)
    pixels = int(dataset.train_x.shape[2] * dataset.train_x.shape[3])
    probe = max(1, min(batch, 8 * 32 * 32 // pixels))  # a few samples per step, scaled up: the probe stays small
    steps = max(1, config.epochs * ((n + config.batch_size - 1) // config.batch_size))
    x = to_float(dataset.train_x[:probe], device)
    y = dataset.train_y[:probe].to(device)
    timings = []
    for _ in range(probe_steps + 1):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        timings.append(time.perf_counter() - start)
    per_step = sorted(timings[1:])[len(timings[1:]) // 2] * batch / probe
    return per_step * steps


def save_checkpoint(trained: TrainedModel, path_stem: Path, dataset_fingerprint: str) -> None:
    """Write ``<stem>.safetensors`` and ``<stem>.json``."""
    from safetensors.torch import save_file

    path_stem.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in trained.model.state_dict().items()}
    save_file(state, str(path_stem.with_suffix(".safetensors")))
    meta = {
        "config": asdict(trained.config),
        "dataset_fingerprint": dataset_fingerprint,
        "test_acc": trained.test_acc,
        "train_seconds": trained.seconds,
        "torch": torch.__version__,
    }
    path_stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))


def _load_cached(stem: Path, dataset: ImageDataset, config: TrainConfig, source: str) -> TrainedModel | None:
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if not (weights.exists() and meta_path.exists()):
        return None
    try:
        from safetensors.torch import load_file

        meta = json.loads(meta_path.read_text())
        model = build_for_dataset(config.model, dataset)
        model.load_state_dict(load_file(str(weights)), strict=True)
    except Exception as exc:  # noqa: BLE001 - a stale or damaged cache entry is retrained, not fatal
        log.warning("ignoring unreadable checkpoint %s: %s", weights, exc)
        return None
    return TrainedModel(model.eval(), config, float(meta["test_acc"]), float(meta.get("train_seconds", 0.0)), source)


def checkpoint_key(dataset: ImageDataset, config: TrainConfig) -> str:
    """The file stem a trained model for ``config`` on ``dataset`` is stored under."""
    return config.key(dataset.fingerprint(), architecture_signature(build_for_dataset(config.model, dataset)))


def find_checkpoint(dataset: ImageDataset, model_name: str, seed: int = 0, config: TrainConfig | None = None) -> str | None:
    """'shipped' or 'cache' when a trained original exists on disk, None when it would be trained."""
    key = checkpoint_key(dataset, config or TrainConfig.default(dataset.name, model_name, seed))
    for folder, source in ((SHIPPED_CHECKPOINTS, "shipped"), (cache_dir() / "models", "cache")):
        if (folder / f"{key}.safetensors").is_file() and (folder / f"{key}.json").is_file():
            return source
    return None


def load_or_train(
    dataset: ImageDataset,
    model_name: str,
    *,
    seed: int = 0,
    config: TrainConfig | None = None,
    device: str | torch.device = "auto",
    progress: OptionalProgress = None,
) -> TrainedModel:
    """The original model for (dataset, model, seed): shipped, cached, or trained now and cached.

    Args:
        dataset: the training data.
        model_name: a registered architecture.
        seed: the training seed (shipped checkpoints are for seed 0 with the default config).
        config: the training schedule (default: the architecture's).
        device: "auto", "cpu", "cuda", ... for training.
        progress: ``progress(fraction, message)`` callback.

    Returns:
        The model in eval mode, its config, test accuracy, training seconds and its source
        ("shipped", "cache" or "trained").
    """
    config = config or TrainConfig.default(dataset.name, model_name, seed)
    key = checkpoint_key(dataset, config)
    for folder, source in ((SHIPPED_CHECKPOINTS, "shipped"), (cache_dir() / "models", "cache")):
        found = _load_cached(folder / key, dataset, config, source)
        if found is not None:
            report(progress, 1.0, f"loaded {source} checkpoint")
            return found
    trained = train_model(dataset, config, device=device, progress=progress)
    save_checkpoint(trained, cache_dir() / "models" / key, dataset.fingerprint())
    return trained


def retrained_key(data_key: str, architecture: str, config: TrainConfig, retain: Subset) -> str:
    """File stem of a model retrained on ``retain``: the schedule and seed, the data, the
    architecture and the retained images themselves (so "class 0" and "T-shirt/top" find the same file)."""
    retained = hashlib.sha256(retain.indices.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()[:16]
    digest = config.key(f"{data_key}|retain:{retained}", architecture).rsplit("-", 1)[1]
    return f"{config.dataset}-{config.model}-retrained-{digest}"


def _retrained_folders() -> tuple[tuple[Path, str], ...]:
    return (SHIPPED_CHECKPOINTS / "retrained", "shipped"), (cache_dir() / "retrained", "cache")


def retrained_source(dataset: Any, retain: Subset, config: TrainConfig, *, data_key: str) -> str | None:
    """Where :func:`retrain_from_scratch` would read this model from ("shipped" or "cache"), or None when it
    would train it: what a page says before a long job starts. Reads no weights."""
    stem = retrained_key(data_key, architecture_signature(build_for_dataset(config.model, dataset)), config, retain)
    return next((source for folder, source in _retrained_folders() if (folder / f"{stem}.safetensors").exists()), None)


def retrain_from_scratch(
    dataset: Any,
    retain: Subset,
    config: TrainConfig,
    *,
    data_key: str,
    device: str | torch.device = "cpu",
    progress: OptionalProgress = None,
    cache: bool = True,
    test: Subset | None = None,
) -> TrainedModel:
    """The gold standard: a fresh ``config.model`` trained on ``retain`` only, or the same model
    loaded from disk (shipped for Fashion-MNIST's classes, else the user cache).

    The one place retraining happens: the ``retrain`` method (Compare, Landscape), the audit's
    reference and ``reproduce`` all come here, so a request retrained once is never retrained again.

    Args:
        dataset: an ``ImageDataset`` or the methods' ``DatasetInfo`` (shape, classes, normalisation).
        retain: the images to train on.
        config: architecture, schedule and seed (the original's schedule for a faithful reference).
        data_key: the training data's fingerprint (part of the cache key).
        device: where to train.
        progress: ``progress(fraction, message)``.
        cache: look up and write the disk cache.
        test: where to measure the test accuracy of a newly trained model (NaN without it).

    Returns:
        The model in eval mode; ``source`` says "shipped", "cache" or "trained", ``seconds`` is the
        training time (recorded in the file when loaded).
    """
    stem = retrained_key(data_key, architecture_signature(build_for_dataset(config.model, dataset)), config, retain)
    if cache:
        for folder, source in _retrained_folders():
            found = _load_cached(folder / stem, dataset, config, source)
            if found is not None:
                report(progress, 1.0, f"loaded the {source} retrained model")
                return found
    trained = _train_fresh(dataset, config, retain, device, progress, test)
    if cache:
        save_checkpoint(trained, cache_dir() / "retrained" / stem, data_key)
    return trained
