"""Running a method: what every method used to repeat, done once, and its data contract enforced.

:func:`run_method` checks the request kind and the config, seeds the global RNGs with the
config's ``seed`` (restored afterwards), copies the model (the caller's is never touched),
hands the method a :class:`MethodData` holding only the subsets its spec declares, times it,
reports the final progress, and returns a :class:`MethodResult` whose ``data_touched`` is what the
method was *given*. A method that asks for more than it declared gets an error, not the data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data import ForgetRequest, ForgetSplit, Subset
from ..errors import InputError
from ..progress import OptionalProgress, report
from .base import (
    FORGET_ONLY,
    FULL_DATA,
    FULL_DATA_CACHED,
    FULL_RETAIN,
    RETAIN_ONLY,
    RETAIN_SUBSET,
    MethodResult,
    MethodSpec,
    check_config,
    get_method,
)
from .loops import seeded, working_copy


class DataContractError(RuntimeError):
    """A method asked for data its spec does not declare (a bug in the method, not bad input)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a method may know about the dataset without reading its images."""

    name: str
    classes: tuple[str, ...]
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


_GIVEN = {
    FORGET_ONLY: ("forget_train",),
    RETAIN_SUBSET: ("forget_train", "retain_train"),
    FULL_RETAIN: ("forget_train", "retain_train"),
    RETAIN_ONLY: ("retain_train",),
    FULL_DATA: ("forget_train", "retain_train", "train"),
    FULL_DATA_CACHED: ("forget_train", "retain_train", "train"),
}


class MethodData:
    """The training data a method may read: only what its spec declares (see :data:`_GIVEN`).

    - ``forget_train``, ``retain_train`` (for :data:`RETAIN_SUBSET` a seeded sample of
      ``retain_fraction`` of it), ``train`` (everything; the two full-data kinds only);
    - ``dataset`` (names, shape, normalisation: no images), ``request``, ``data_key`` (the data's
      fingerprint, for caches), ``generator`` (a ``torch.Generator`` seeded with the config's seed,
      for the data order; for :data:`RETAIN_SUBSET` it already drew the retain sample);
    - ``retain_total``: how many retain images there are (a count, not the images).
    """

    def __init__(self, spec: MethodSpec, split: ForgetSplit, seed: int, retain_fraction: float | None = None) -> None:
        dataset = split.dataset
        self.method = spec.name
        self.reads = spec.data_touched
        self.request: ForgetRequest = split.request
        self.dataset = DatasetInfo(dataset.name, tuple(dataset.classes), dataset.num_classes, dataset.input_shape,
                                   tuple(dataset.mean), tuple(dataset.std))
        self.data_key = f"{dataset.fingerprint()}-train"
        self.retain_total = len(split.retain_train)
        self.generator = torch.Generator().manual_seed(int(seed))
        self._subsets: dict[str, Subset] = {"forget_train": split.forget_train, "train": split.train}
        retain = split.retain_train
        if self.reads == RETAIN_SUBSET:
            keep = max(1, int(round(float(retain_fraction or 1.0) * len(retain))))
            retain = retain.select(torch.randperm(len(retain), generator=self.generator)[:keep])
        self._subsets["retain_train"] = retain

    def _get(self, name: str) -> Subset:
        if name not in _GIVEN[self.reads]:
            raise DataContractError(f"Method '{self.method}' declares it reads the {self.reads}, but asked for {name}.")
        return self._subsets[name]

    @property
    def forget_train(self) -> Subset:
        return self._get("forget_train")

    @property
    def retain_train(self) -> Subset:
        return self._get("retain_train")

    @property
    def train(self) -> Subset:
        return self._get("train")

    def require(self, name: str, what: str) -> Subset:
        """The subset ``name``, which must not be empty (InputError naming ``what`` otherwise)."""
        subset = self._get(name)
        if len(subset) == 0:
            raise InputError(f"{self.method} needs a non-empty {what}.")
        return subset


def run_method(
    name: str,
    model: nn.Module,
    split: ForgetSplit,
    config: Any = None,
    *,
    device: torch.device | str = "cpu",
    progress: OptionalProgress = None,
    **options: Any,
) -> MethodResult:
    """Run the registered method ``name`` on ``split`` from ``model`` (which is never modified).

    Args:
        name: a registered method (see :func:`~ssd_core.methods.available_methods`).
        model: the original model.
        split: the forget request's subsets; the method gets only those its spec declares.
        config: the method's config dataclass, or None to build it from ``options``.
        device: where to compute.
        progress: ``progress(fraction, message)`` callback.
        **options: config values when ``config`` is None (checked like the CLI's ``--param``).

    Returns:
        The unlearned model, seconds per step (with ``"total"``), what data it was given and its
        diagnostics.
    """
    spec = get_method(name)
    if split.request.kind not in spec.supports:
        raise InputError(f"Method '{name}' does not support {split.request.kind} forget requests.")
    config = spec.default_config(**options) if config is None else check_config(spec, config)
    device = torch.device(device)
    seed = int(getattr(config, "seed", 0))
    data = MethodData(spec, split, seed, getattr(config, "retain_fraction", None))
    start = time.perf_counter()
    with seeded(seed, device):
        work = working_copy(model, device).eval()
        outcome = spec.run(work, data, config, device=device, progress=progress)
    unlearned = outcome.model.eval()
    seconds = {**outcome.seconds, "total": time.perf_counter() - start}
    report(progress, 1.0, f"{name} done")
    return MethodResult(model=unlearned, seconds=seconds, data_touched=spec.data_touched,
                        diagnostics=dict(outcome.diagnostics))
