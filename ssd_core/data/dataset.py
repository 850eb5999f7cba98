"""The dataset container: uint8 images (N, C, H, W) and int64 labels, split into train and test.

Images stay uint8, so large sets stay small in memory; batches are turned into float [0, 1]
tensors on the fly (:func:`to_float`). Normalisation (mean/std per dataset) lives inside the model
(see ``models.Normalize``), so attacks and saliency work in plain [0, 1] pixel space.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from .. import precision  # noqa: F401  (float32 stays float32 on NVIDIA GPUs: TF32 off)
from ..errors import InputError


@dataclass
class ImageDataset:
    """A labelled image dataset with a fixed train/test split, images stored as uint8."""

    name: str
    train_x: torch.Tensor  # uint8, (N, C, H, W)
    train_y: torch.Tensor  # int64, (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # Optional finer labels inside each class, for sub-class forgetting (cifar20: the labels
    # are the 20 superclasses and these are the 100 CIFAR-100 fine classes).
    subclass_train_y: torch.Tensor | None = None
    subclass_test_y: torch.Tensor | None = None
    subclass_names: list[str] | None = None
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("train_x", "test_x"):
            x = getattr(self, name)
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise InputError(f"{self.name}: {name} must be a uint8 tensor shaped (N, C, H, W).")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise InputError(f"{self.name}: train and test images have different shapes.")
        if len(self.train_x) != len(self.train_y) or len(self.test_x) != len(self.test_y):
            raise InputError(f"{self.name}: the number of images and labels differ.")
        if len(self.classes) < 2:
            raise InputError(f"{self.name}: a dataset needs at least two classes to forget one.")
        self.train_y = self.train_y.long()
        self.test_y = self.test_y.long()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def fingerprint(self) -> str:
        """A short hash of the data, used as a cache key for importances."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
                digest.update(tensor.contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def train(self) -> Subset:
        return Subset(self.train_x, self.train_y, torch.arange(len(self.train_y)))

    def test(self) -> Subset:
        return Subset(self.test_x, self.test_y, torch.arange(len(self.test_y)))


@dataclass(frozen=True)
class Subset:
    """Some images of a split; ``indices`` point back into that split."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def select(self, mask_or_index: torch.Tensor) -> Subset:
        return Subset(self.x[mask_or_index], self.y[mask_or_index], self.indices[mask_or_index])


def to_float(x: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] on ``device`` (float input is passed through)."""
    if device is not None:
        x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


def batches(
    subset: Subset, batch_size: int, device: torch.device | str = "cpu"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Unshuffled (float images, labels) mini-batches on ``device``."""
    if batch_size < 1:
        raise InputError("The batch size must be at least 1.")
    for start in range(0, len(subset), batch_size):
        stop = start + batch_size
        yield to_float(subset.x[start:stop], device), subset.y[start:stop].to(device)
