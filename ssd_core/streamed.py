"""SSD-family unlearning on data read batch by batch (:class:`~ssd_core.data.streaming.StreamingImages`).

For training sets that do not fit in memory: I_D is a pass over every training image and I_f a
pass over the forget class's, both streamed; the accuracies before and after are streamed passes
over the test images, and the SSD paper's MIA is fitted on the entropies (one float per image) of
a fixed sample of :data:`MIA_SAMPLE` retain images against the test images'. Only the collapse
guard (for ``assd``/``alfssd``) holds images, a fixed sample of at most
:data:`~ssd_core.guard.SAMPLE` retain and forget images, so memory depends on the batch size and
those samples, never on the number of images.

The numbers equal the in-memory path's for the same images in the same order (the batch Fisher
depends on batch composition, so the order matters). Only the SSD family streams: the other methods
loop over the retain set many times and hold it in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset
from torch.utils.data import Subset as IndexSubset

from .dampening import DampeningReport, check_hyperparameters
from .data import Subset
from .data.streaming import StreamingImages, stream
from .engine import SSDEngine
from .errors import InputError
from .guard import SAMPLE, CollapseGuard
from .importance import ImportanceDict, importance_from_loader
from .metrics import mia_from_entropies, scan_loader
from .progress import OptionalProgress, report, scaled

MIA_SAMPLE = 10_000  # retain-train images whose entropies the streamed MIA fits on (a fixed sample)
STREAMED_METHODS = {"ssd": "fisher", "lfssd": "lossfree", "assd": "fisher", "alfssd": "lossfree"}
ADAPTIVE = ("assd", "alfssd")
FIXED = ("ssd", "lfssd")  # the fixed-alpha method each adaptive one adapts


def image_labels(images: StreamingImages) -> np.ndarray:
    """Every image's label without decoding any image (the folder's label array, the CIFAR label column)."""
    if images.packed_labels is not None:
        return np.asarray(images.packed_labels, dtype=np.int64)
    if images.records is not None:
        return np.asarray(images.records[:, images.label_column], dtype=np.int64)
    return np.asarray(images.labels, dtype=np.int64)


def _in_memory(images: Dataset, indices: np.ndarray) -> Subset:
    """A bounded sample decoded into memory (for the collapse guard)."""
    pairs = [images[int(i)] for i in indices]
    return Subset(torch.stack([x for x, _ in pairs]), torch.tensor([y for _, y in pairs]), torch.as_tensor(indices))


def _sample(indices: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(indices) <= limit:
        return indices
    generator = torch.Generator().manual_seed(seed)
    return np.sort(indices[torch.randperm(len(indices), generator=generator)[:limit].numpy()])


@dataclass
class StreamedAccuracy:
    """Forget-class and retain accuracy on the streamed test images, and the MIA."""

    forget_test_acc: float | None
    retain_test_acc: float | None
    per_class_acc: list[float | None] = field(default_factory=list)
    mia: float | None = None  # the SSD paper's MIA (as metrics.Evaluator), on a fixed retain-train sample

    @classmethod
    def of(cls, correct: torch.Tensor, total: torch.Tensor, forget_class: int) -> StreamedAccuracy:
        def ratio(c: float, t: float) -> float | None:
            return c / t if t else None

        c_all, t_all = float(correct.sum()), float(total.sum())
        c_f, t_f = float(correct[forget_class]), float(total[forget_class])
        return cls(ratio(c_f, t_f), ratio(c_all - c_f, t_all - t_f),
                   [ratio(float(c), float(t)) for c, t in zip(correct, total, strict=True)])


@dataclass
class StreamedResult:
    """What :func:`unlearn_streamed` returns."""

    model: nn.Module
    method: str
    alpha: float
    lam: float
    report: DampeningReport
    before: StreamedAccuracy | None
    after: StreamedAccuracy | None
    n_train: int
    n_forget: int
    seconds: dict[str, float]
    auto: dict[str, Any] | None = None
    full_importance: ImportanceDict | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "alpha": self.alpha, "lam": self.lam, "n_train": self.n_train,
                "n_forget": self.n_forget, "streamed": True,
                "before": None if self.before is None else vars(self.before),
                "after": None if self.after is None else vars(self.after),
                "diagnostics": {"report": self.report.to_dict(), **({"auto": self.auto} if self.auto else {})},
                "seconds": self.seconds}


def unlearn_streamed(
    model: nn.Module,
    train: StreamingImages,
    forget_class: int,
    method: str = "ssd",
    *,
    test: StreamingImages | None = None,
    alpha: float | None = None,
    lam: float = 1.0,
    batch_size: int = 64,
    workers: int = 0,
    device: torch.device | str = "cpu",
    full_importance: ImportanceDict | None = None,
    seed: int = 0,
    progress: OptionalProgress = None,
) -> StreamedResult:
    """Forget one class with SSD, LFSSD or their adaptive variants, reading the data batch by batch.

    Args:
        model: the original model (never modified).
        train: the training images (D); the forget set is its ``forget_class`` images.
        forget_class: the class to forget (its index in ``train.classes``).
        method: "ssd", "lfssd", "assd" or "alfssd".
        test: the test images, for the accuracies before and after (None: not evaluated).
        alpha: the selection threshold (needed for ssd and lfssd; the adaptive ones choose it).
        lam: the dampening strength.
        batch_size, workers: the loader's batch size and decoding processes.
        device: where to compute.
        full_importance: I_D when already computed (e.g. by ``python -m ssd_core importance``).
        seed: the guard sample's seed.
        progress: ``progress(fraction, message)``; the passes report images/s and the time left.
    """
    if method not in STREAMED_METHODS:
        raise InputError(f"Only {', '.join(STREAMED_METHODS)} run on streamed data; '{method[:40]}' loops over the "
                         "retain set many times and needs it in memory.")
    if method not in ADAPTIVE:
        if alpha is None:
            raise InputError(f"{method} needs an alpha; or use {ADAPTIVE[FIXED.index(method)]}, which chooses it.")
        check_hyperparameters(alpha, lam)
    labels = image_labels(train)
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    if not 0 <= forget_class < max(n_classes, len(train.classes)):
        raise InputError(f"The forget class must be between 0 and {max(n_classes, len(train.classes)) - 1}.")
    forget_idx = np.flatnonzero(labels == forget_class)
    if len(forget_idx) == 0:
        raise InputError(f"The training images have no image of class {forget_class}.")
    device = torch.device(device)
    estimator = STREAMED_METHODS[method]
    seconds: dict[str, float] = {}
    original = model.to(device).eval()

    start = time.perf_counter()
    if full_importance is None:
        full_importance = importance_from_loader(original, stream(train, batch_size, workers), estimator, device,
                                                 scaled(progress, 0.0, 0.6))
    seconds["full_importance"] = time.perf_counter() - start
    start = time.perf_counter()
    forget_set = IndexSubset(train, forget_idx.tolist())
    forget_importance = importance_from_loader(original, stream(forget_set, batch_size, workers), estimator, device,
                                               scaled(progress, 0.6, 0.7), n_images=len(forget_idx))
    seconds["forget_importance"] = time.perf_counter() - start

    auto = None
    start = time.perf_counter()
    engine = SSDEngine(original, full_importance, forget_importance)
    if method in ADAPTIVE:
        report(progress, 0.7, "adaptive alpha and the collapse guard")
        retain_idx = _sample(np.flatnonzero(labels != forget_class), SAMPLE, seed)
        guard = CollapseGuard(original, _in_memory(train, retain_idx), _in_memory(train, _sample(forget_idx, SAMPLE, seed)),
                              device, seed=seed, whole_classes=True)
        setting = engine.auto(guard, len(forget_idx), len(labels), lam)
        alpha, lam, auto = setting.alpha, setting.lam_used, setting.to_dict()
    assert alpha is not None
    unlearned, dampening = engine.at(float(alpha), lam, with_statistics=True)
    seconds["dampen"] = time.perf_counter() - start

    before = after = None
    if test is not None:
        start = time.perf_counter()
        report(progress, 0.8, "accuracy and MIA before and after")
        k = max(n_classes, len(train.classes))
        retain_sample = IndexSubset(train, _sample(np.flatnonzero(labels != forget_class), MIA_SAMPLE, seed).tolist())
        measured = []
        for net in (original, unlearned):  # one pass over each set per model: counts and entropies together
            correct, total, test_entropy = scan_loader(net, stream(test, batch_size, workers), k, device)
            accuracy = StreamedAccuracy.of(correct, total, forget_class)
            retain_entropy, forget_entropy = (scan_loader(net, stream(part, batch_size, workers), k, device)[2]
                                              for part in (retain_sample, forget_set))
            accuracy.mia = mia_from_entropies(retain_entropy, test_entropy, forget_entropy)
            measured.append(accuracy)
        before, after = measured
        seconds["evaluate"] = time.perf_counter() - start
    report(progress, 1.0, "done")
    return StreamedResult(unlearned, method, float(alpha), float(lam), dampening, before, after, len(labels),
                          len(forget_idx), seconds, auto, full_importance)
