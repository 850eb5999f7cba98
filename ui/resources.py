"""Shared, read-only resources: datasets, original models, importances and everything about a
run setup that does not depend on alpha or lambda.

They live in one process-wide :class:`ResourceStore` held by ``st.cache_resource``, so every
session shares them and nothing is computed twice. The store (rather than caching the loaders
themselves with ``st.cache_resource``) lets the long steps report progress to the page that
asked for them. Nothing here is ever mutated after it is built: sessions dampen into their own
scratch copy (see :mod:`ui.live`).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable

import streamlit as st
import torch
from torch import nn

from ssd_core import figures
from ssd_core.data import EMBEDDED_DATASETS, FILE_DATASETS, ForgetSplit, ImageDataset, load_dataset, make_split
from ssd_core.dampening import DampeningReport, dampen
from ssd_core.errors import InputError
from ssd_core.importance import model_fingerprint
from ssd_core.methods import available_methods, get_method
from ssd_core.methods.base import MethodSpec
from ssd_core.methods.ssd import SSDImportances, ssd_importances
from ssd_core.metrics import Evaluation, SplitOutputs, evaluate_outputs, random_reference_logits, split_outputs
from ssd_core.models import ModelSpec, get_spec, last_conv_layer, resolve_device
from ssd_core.progress import OptionalProgress, report, scaled
from ssd_core.train import TrainedModel, load_or_train

from .state import UI_METHODS, RunSetup

log = logging.getLogger("unlearning_lab.ui")


# ---------------------------------------------------------------------------------------------
# The store


class ResourceStore:
    """A thread-safe, size-bounded cache: one builder runs per key, other callers wait for it."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, OrderedDict[Hashable, Any]] = {}
        self._key_locks: dict[tuple[str, Hashable], threading.Lock] = {}
        self._limits = limits or {}

    def peek(self, namespace: str, key: Hashable) -> Any | None:
        with self._lock:
            return self._items.get(namespace, OrderedDict()).get(key)

    def get(self, namespace: str, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            items = self._items.setdefault(namespace, OrderedDict())
            if key in items:
                items.move_to_end(key)
                return items[key]
            key_lock = self._key_locks.setdefault((namespace, key), threading.Lock())
        with key_lock:
            with self._lock:
                if key in items:
                    return items[key]
            value = build()  # outside the global lock: other keys stay available
            with self._lock:
                items[key] = value
                items.move_to_end(key)
                limit = self._limits.get(namespace, 8)
                while len(items) > limit:
                    old_key, _ = items.popitem(last=False)
                    self._key_locks.pop((namespace, old_key), None)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._key_locks.clear()


@st.cache_resource(show_spinner=False)
def resource_store() -> ResourceStore:
    """The process-wide store (one per server process, shared by all sessions)."""
    return ResourceStore({"model": 4, "prepared": 4, "saliency_before": 16})


def configure_torch() -> None:
    """Keep torch from grabbing every core of a shared machine (UNLEARNING_LAB_THREADS overrides)."""
    wanted = os.environ.get("UNLEARNING_LAB_THREADS")
    threads = int(wanted) if wanted and wanted.isdigit() else min(4, os.cpu_count() or 1)
    if torch.get_num_threads() != max(1, threads):
        torch.set_num_threads(max(1, threads))


# ---------------------------------------------------------------------------------------------
# Datasets, methods, models


@st.cache_resource(show_spinner="Loading the dataset…")
def cached_dataset(name: str, data_dir: str | None = None) -> ImageDataset:
    """A dataset, loaded once per process. Never mutate what you get."""
    return load_dataset(name, data_dir)


def _file_dataset_present(name: str, root: Path) -> bool:
    """Whether the files of a file-based dataset exist under ``root`` (without reading them)."""
    if name in ("mnist", "fashion_mnist"):
        aliases = ["fashion_mnist", "fashion-mnist", "FashionMNIST"] if name == "fashion_mnist" else ["mnist", "MNIST"]
        dirs = [root] + [d for a in aliases for d in (root / a, root / a / "raw")]
        needed = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
        return all(any((d / f).is_file() or (d / f"{f}.gz").is_file() for d in dirs) for f in needed)
    if name == "cifar10":
        dirs = [root / "cifar-10-batches-bin", root, root / "cifar10" / "cifar-10-batches-bin", root / "cifar10"]
        return any((d / "test_batch.bin").is_file() for d in dirs)
    if name in ("cifar100", "cifar20"):
        dirs = [root / "cifar-100-binary", root, root / "cifar100" / "cifar-100-binary", root / "cifar100"]
        return any((d / "train.bin").is_file() and (d / "test.bin").is_file() for d in dirs)
    return False  # imagefolder needs an explicit folder


def available_datasets(data_dir: str | None = None) -> list[str]:
    """Embedded datasets, plus file-based ones whose files exist in the data directory."""
    from ssd_core.data_files import default_data_dir

    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    present = []
    if root.is_dir():
        present = [name for name in FILE_DATASETS if _file_dataset_present(name, root)]
    return list(EMBEDDED_DATASETS) + present


def ui_methods() -> dict[str, MethodSpec]:
    """SSD-family methods the dashboard drives live (as registered in ssd_core.methods)."""
    registry = available_methods()
    return {name: registry[name] for name in UI_METHODS if name in registry}


def default_alpha(method: str, model: str) -> float:
    """The paper's alpha: the model family's for SSD, the method's own default otherwise."""
    spec = get_method(method)
    config_alpha = float(getattr(spec.default_config(), "alpha", 10.0))
    if method == "ssd":
        try:
            return float(get_spec(model).default_alpha)
        except InputError:
            return config_alpha
    return config_alpha


def checkpoint_source(dataset: ImageDataset, model_name: str, seed: int) -> str | None:
    """'shipped' or 'cache' when a trained checkpoint exists for this choice, None when it will be
    trained, '' when that cannot be told."""
    from ssd_core.train import find_checkpoint

    try:
        return find_checkpoint(dataset, model_name, seed)
    except Exception:  # noqa: BLE001 - only a hint for the sidebar
        return ""


@dataclass
class OriginalModel:
    trained: TrainedModel
    model: nn.Module  # on ``device``, eval mode; shared: never modify
    device: torch.device
    fingerprint: str
    seconds: float


def original_model(
    dataset: ImageDataset, model_name: str, seed: int, device: torch.device, progress: OptionalProgress = None
) -> OriginalModel:
    """The trained original (shipped, cached on disk, or trained now), once per process."""
    key = (dataset.name, dataset.fingerprint(), model_name, seed, str(device))

    def build() -> OriginalModel:
        start = time.perf_counter()
        trained = load_or_train(dataset, model_name, seed=seed, device=device, progress=progress)
        model = trained.model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(True)
        return OriginalModel(trained, model, device, model_fingerprint(model), time.perf_counter() - start)

    return resource_store().get("model", key, build)


def peek_original_model(dataset: ImageDataset, model_name: str, seed: int, device: torch.device) -> OriginalModel | None:
    return resource_store().peek("model", (dataset.name, dataset.fingerprint(), model_name, seed, str(device)))


# ---------------------------------------------------------------------------------------------
# A prepared run (everything that does not depend on alpha or lambda)


@dataclass
class Prepared:
    setup: RunSetup
    dataset: ImageDataset
    split: ForgetSplit
    original: OriginalModel
    method_spec: MethodSpec
    model_spec: ModelSpec
    importances: SSDImportances
    before_outputs: SplitOutputs
    before_eval: Evaluation
    random_logits: torch.Tensor
    ratio_summaries: list[figures.LayerRatioSummary]
    importance_sample: figures.ImportanceSample
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> nn.Module:
        return self.original.model

    @property
    def device(self) -> torch.device:
        return self.original.device

    @property
    def key(self) -> tuple:
        return self.setup.key()

    @property
    def param_names(self) -> list[str]:
        return list(self.importances.full)

    def default_layer(self) -> str:
        """The last conv layer's weight when there is one, else the largest weight tensor."""
        names = self.param_names
        conv = last_conv_layer(self.model)
        if conv is not None:
            for name, module in self.model.named_modules():
                if module is conv and f"{name}.weight" in names:
                    return f"{name}.weight"
        params = dict(self.model.named_parameters())
        return max(names, key=lambda n: params[n].numel())


def _prepare(setup: RunSetup, progress: OptionalProgress) -> Prepared:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    report(progress, 0.0, f"loading {setup.dataset}")
    if setup.method not in ui_methods():
        raise InputError(f"The dashboard drives {', '.join(ui_methods())} live; '{setup.method}' is not one of them.")
    method_spec = get_method(setup.method)
    if setup.request.kind not in method_spec.supports:
        raise InputError(f"{setup.method.upper()} does not support {setup.request.kind} forget requests.")
    model_spec = get_spec(setup.model)
    device = resolve_device(setup.device)
    dataset = cached_dataset(setup.dataset, setup.data_dir)
    split = make_split(dataset, setup.request)
    seconds["data"] = time.perf_counter() - start

    start = time.perf_counter()
    original = original_model(dataset, setup.model, setup.seed, device, scaled(progress, 0.02, 0.6))
    seconds["original_model"] = time.perf_counter() - start

    start = time.perf_counter()
    report(progress, 0.6, "importance on the full training data (cached after the first time)")
    importances = ssd_importances(
        original.model, split, setup.estimator, setup.batch_size, device=device,
        model_key=original.fingerprint, progress=scaled(progress, 0.6, 0.92),
    )
    seconds["importance_full"] = importances.full_seconds
    seconds["importance_forget"] = importances.forget_seconds

    start = time.perf_counter()
    report(progress, 0.93, "evaluating the original model")
    before_outputs = split_outputs(original.model, split, device)
    random_logits = random_reference_logits(setup.model, split, device, seed=setup.seed)
    before_eval = evaluate_outputs(before_outputs, split, random_forget_logits=random_logits)
    seconds["evaluation"] = time.perf_counter() - start

    report(progress, 0.97, "summarising importance ratios")
    summaries = figures.layer_ratio_summaries(importances.full, importances.forget)
    sample = figures.sample_importances(importances.full, importances.forget, seed=setup.seed)
    report(progress, 1.0, "ready")
    return Prepared(setup, dataset, split, original, method_spec, model_spec, importances, before_outputs,
                    before_eval, random_logits, summaries, sample, seconds)


def prepare(setup: RunSetup, progress: OptionalProgress = None) -> Prepared:
    """The prepared run for ``setup`` (built once per process, then shared read-only)."""
    return resource_store().get("prepared", setup.key(), lambda: _prepare(setup, progress))


def peek_prepared(setup: RunSetup) -> Prepared | None:
    return resource_store().peek("prepared", setup.key())


# ---------------------------------------------------------------------------------------------
# Live results (one per slider position)


@dataclass
class LiveResult:
    alpha: float
    lam: float
    model: nn.Module  # the session's scratch model, overwritten by the next slider move
    report: DampeningReport
    outputs: SplitOutputs
    evaluation: Evaluation
    seconds: dict[str, float]


def scratch_model(prepared: Prepared) -> nn.Module:
    """A private same-architecture model to dampen into (one per session and prepared run)."""
    return copy.deepcopy(prepared.model)


def compute_live(prepared: Prepared, alpha: float, lam: float, scratch: nn.Module | None = None) -> LiveResult:
    """Dampen with cached importances and evaluate once (what a slider move costs)."""
    start = time.perf_counter()
    model, dampening_report = dampen(
        prepared.model, prepared.importances.full, prepared.importances.forget, alpha, lam,
        with_statistics=False, into=scratch,
    )
    damp_seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs = split_outputs(model, prepared.split, prepared.device)
    evaluation = evaluate_outputs(outputs, prepared.split, random_forget_logits=prepared.random_logits)
    evaluation.seconds = time.perf_counter() - start
    return LiveResult(alpha, lam, model, dampening_report, outputs, evaluation,
                      {"dampening": damp_seconds, "evaluation": evaluation.seconds})
