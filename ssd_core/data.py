"""Datasets and forget requests.

Every dataset is held as uint8 images (N, C, H, W) plus int64 labels, so large sets stay small in
memory; batches are turned into float [0, 1] tensors on the fly (:func:`to_float`). Normalisation
(mean/std per dataset) lives inside the model (see ``models.Normalize``), so attacks and saliency
work in plain [0, 1] pixel space.

A :class:`ForgetRequest` says what to forget; :func:`make_split` turns it into the four subsets
every method and metric uses: forget-train, retain-train, forget-test, retain-test.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterator, Literal, Sequence

import numpy as np
import torch

from .errors import InputError
from .indices import format_indices, parse_indices  # noqa: F401  (the one index parser, re-exported)

# ---------------------------------------------------------------------------------------------
# Dataset container


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

    def train(self) -> "Subset":
        return Subset(self.train_x, self.train_y, torch.arange(len(self.train_y)))

    def test(self) -> "Subset":
        return Subset(self.test_x, self.test_y, torch.arange(len(self.test_y)))


@dataclass(frozen=True)
class Subset:
    """Some images of a split; ``indices`` point back into that split."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def select(self, mask_or_index: torch.Tensor) -> "Subset":
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


# ---------------------------------------------------------------------------------------------
# Embedded datasets


def load_digits() -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits (1797 images) with a fixed stratified 80/20 split."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N,1,8,8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0
    )
    train_idx.sort()
    test_idx.sort()
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    mean = float(x[torch.from_numpy(train_idx)].float().mean() / 255)
    std = float(x[torch.from_numpy(train_idx)].float().std() / 255)
    return ImageDataset(
        name="digits",
        train_x=x[torch.from_numpy(train_idx)].clone(),
        train_y=y[torch.from_numpy(train_idx)].clone(),
        test_x=x[torch.from_numpy(test_idx)].clone(),
        test_y=y[torch.from_numpy(test_idx)].clone(),
        classes=[str(d) for d in range(10)],
        mean=(mean,),
        std=(std,),
    )


SHAPE_CLASSES = ["circle", "square", "triangle", "cross", "ring", "diamond", "star", "bar"]


def _shape_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of one shape, drawn on a 32x32 canvas at a random place and size."""
    canvas = 32
    radius = rng.uniform(5.0, 11.0)
    cx, cy = rng.uniform(radius + 1, canvas - radius - 1, size=2)
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    angle = rng.uniform(-0.35, 0.35)
    rx = dx * np.cos(angle) + dy * np.sin(angle)
    ry = -dx * np.sin(angle) + dy * np.cos(angle)
    r = np.sqrt(dx**2 + dy**2)
    if kind == "circle":
        return r <= radius
    if kind == "square":
        return (np.abs(rx) <= radius * 0.8) & (np.abs(ry) <= radius * 0.8)
    if kind == "triangle":
        return (ry <= radius * 0.7) & (ry >= -radius * 0.9 + 1.8 * np.abs(rx))
    if kind == "cross":
        arm = radius * 0.3
        return ((np.abs(rx) <= arm) & (np.abs(ry) <= radius)) | (
            (np.abs(ry) <= arm) & (np.abs(rx) <= radius)
        )
    if kind == "ring":
        return (r <= radius) & (r >= radius * 0.55)
    if kind == "diamond":
        return (np.abs(rx) + np.abs(ry)) <= radius
    if kind == "star":
        theta = np.arctan2(ry, rx)
        return r <= radius * (0.55 + 0.45 * np.cos(5 * theta) ** 2)
    if kind == "bar":
        return (np.abs(rx) <= radius) & (np.abs(ry) <= radius * 0.3)
    raise ValueError(kind)


def load_shapes(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> ImageDataset:
    """A generated 32x32 RGB dataset of 8 shape classes.

    Random colour, size, position, rotation and background noise make it hard enough that a
    linear model does not reach 100%; the same seed always gives the same images.
    """
    rng = np.random.default_rng(seed)
    total = n_train + n_test
    labels = np.arange(total) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    images = np.empty((total, 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        background = rng.uniform(0, 255, size=3)
        noise = rng.normal(0, 40, size=(3, 32, 32))
        foreground = rng.uniform(0, 255, size=3)
        while np.abs(foreground - background).sum() < 150:
            foreground = rng.uniform(0, 255, size=3)
        mask = _shape_mask(SHAPE_CLASSES[label], 32, rng)
        img = background[:, None, None] + noise
        img = np.where(mask[None], foreground[:, None, None] + noise * 0.5, img)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels.astype(np.int64))
    train_x = x[:n_train]
    mean = tuple(float(v) for v in train_x.float().mean(dim=(0, 2, 3)) / 255)
    std = tuple(float(v) for v in train_x.float().std(dim=(0, 2, 3)) / 255)
    return ImageDataset(
        name="shapes",
        train_x=train_x.clone(),
        train_y=y[:n_train].clone(),
        test_x=x[n_train:].clone(),
        test_y=y[n_train:].clone(),
        classes=list(SHAPE_CLASSES),
        mean=mean,
        std=std,
    )


EMBEDDED_DATASETS = ("digits", "shapes")
FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "cifar20", "imagefolder")
DATASETS = EMBEDDED_DATASETS + FILE_DATASETS

_memory: dict[tuple, ImageDataset] = {}


def load_dataset(
    name: str, data_dir: str | None = None, download: bool = False
) -> ImageDataset:
    """Load a dataset by name; embedded ones need nothing, file-based ones read ``data_dir``.

    Results are kept in memory, so asking twice costs nothing. Never mutate what you get.
    """
    key = (name, data_dir, download)
    if key in _memory:
        return _memory[key]
    if name == "digits":
        dataset = load_digits()
    elif name == "shapes":
        dataset = load_shapes()
    elif name in FILE_DATASETS:
        from . import data_files

        dataset = data_files.load_file_dataset(name, data_dir, download=download)
    else:
        raise InputError(
            f"Unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}."
        )
    _memory[key] = dataset
    return dataset


# ---------------------------------------------------------------------------------------------
# Forget requests

RequestKind = Literal["class", "subclass", "random", "indices"]


@dataclass(frozen=True)
class ForgetRequest:
    """What to forget.

    - ``class``: every image of ``target`` (a class index or name).
    - ``subclass``: a fine class inside its superclass (CIFAR-100/20 style); the model is
      trained on the coarse labels, ``target`` names the fine class.
    - ``random``: ``k`` random training images (drawn with ``seed``).
    - ``indices``: explicit training-set indices.
    """

    kind: RequestKind
    target: int | str | None = None
    k: int | None = None
    indices: tuple[int, ...] | None = None
    seed: int = 0

    @property
    def is_instance(self) -> bool:
        return self.kind in ("random", "indices")

    def describe(self) -> str:
        if self.kind == "class":
            return f"class {self.target}"
        if self.kind == "subclass":
            return f"sub-class {self.target}"
        if self.kind == "random":
            return f"{self.k} random training samples (seed {self.seed})"
        return f"{len(self.indices or ())} picked training samples"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "target": self.target,
            "k": self.k,
            "indices": list(self.indices) if self.indices is not None else None,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class ForgetSplit:
    """The four subsets of a forget request, plus the full splits they came from."""

    dataset: ImageDataset
    request: ForgetRequest
    forget_train: Subset
    retain_train: Subset
    forget_test: Subset
    retain_test: Subset
    forget_classes: tuple[int, ...]  # classes (of the training labels) the request removes

    @property
    def train(self) -> Subset:
        return self.dataset.train()

    @property
    def test(self) -> Subset:
        return self.dataset.test()


_INDEX = re.compile(r"-?[0-9]{1,9}")  # a class index as text: ASCII digits only ('³'.isdigit() is True)


def resolve_class(dataset: ImageDataset, target: int | str | None) -> int:
    """A class index from an index or a class name, with a clear error when out of range."""
    if target is None:
        raise InputError("Say which class to forget.")
    if isinstance(target, str) and not _INDEX.fullmatch(target.strip()):
        if target not in dataset.classes:
            shown = target if len(target) <= 40 else target[:39] + "…"
            raise InputError(
                f"'{shown}' is not a class of {dataset.name}; classes are "
                f"{', '.join(dataset.classes[:20])}{'...' if dataset.num_classes > 20 else ''}."
            )
        return dataset.classes.index(target)
    index = int(target)
    if not 0 <= index < dataset.num_classes:
        raise InputError(
            f"Class {index} is out of range: {dataset.name} has classes 0 to {dataset.num_classes - 1}."
        )
    return index


def make_split(dataset: ImageDataset, request: ForgetRequest) -> ForgetSplit:
    """Turn a forget request into forget/retain train/test subsets, checking it makes sense."""
    train, test = dataset.train(), dataset.test()
    n_train = len(train)
    if request.kind == "class":
        cls = resolve_class(dataset, request.target)
        forget_mask = train.y == cls
        test_mask = test.y == cls
        classes: tuple[int, ...] = (cls,)
    elif request.kind == "subclass":
        if dataset.subclass_train_y is None or dataset.subclass_names is None:
            raise InputError(
                f"{dataset.name} has no sub-classes; sub-class forgetting needs a dataset like cifar20."
            )
        fine_names = dataset.subclass_names
        if request.target not in fine_names and not _INDEX.fullmatch(str(request.target)):
            raise InputError(f"'{request.target}' is not a sub-class of {dataset.name}.")
        fine = (
            fine_names.index(request.target)
            if request.target in fine_names
            else int(request.target)  # type: ignore[arg-type]
        )
        if not 0 <= fine < len(fine_names):
            raise InputError(f"Sub-class {fine} is out of range for {dataset.name}.")
        forget_mask = dataset.subclass_train_y == fine
        test_mask = dataset.subclass_test_y == fine  # type: ignore[operator]
        classes = tuple(int(c) for c in torch.unique(train.y[forget_mask]))
    elif request.kind == "random":
        if request.k is None or request.k < 1:
            raise InputError("The number of random samples to forget must be at least 1.")
        if request.k >= n_train:
            raise InputError(
                f"Cannot forget {request.k} samples: the training set has only {n_train}, and something must remain."
            )
        generator = torch.Generator().manual_seed(request.seed)
        chosen = torch.randperm(n_train, generator=generator)[: request.k]
        forget_mask = torch.zeros(n_train, dtype=torch.bool)
        forget_mask[chosen] = True
        test_mask = torch.zeros(len(test), dtype=torch.bool)
        classes = ()
    elif request.kind == "indices":
        indices = list(request.indices or ())
        if not indices:
            raise InputError("The list of samples to forget is empty.")
        bad = [i for i in indices if not 0 <= i < n_train]
        if bad:
            raise InputError(
                f"Sample index {bad[0]} is out of range: the training set has indices 0 to {n_train - 1}."
            )
        forget_mask = torch.zeros(n_train, dtype=torch.bool)
        forget_mask[torch.tensor(indices)] = True
        if bool(forget_mask.all()):
            raise InputError("The request covers every training sample; nothing would remain.")
        test_mask = torch.zeros(len(test), dtype=torch.bool)
        classes = ()
    else:
        raise InputError(f"Unknown forget request kind '{request.kind}'.")

    if not bool(forget_mask.any()):
        raise InputError(f"The forget request ({request.describe()}) selects no training samples.")
    if bool(forget_mask.all()) or len(torch.unique(train.y[~forget_mask])) < 1:
        raise InputError("The request covers every training sample; nothing would remain.")
    if request.kind in ("class", "subclass") and len(torch.unique(train.y[~forget_mask])) < 1:
        raise InputError("The request covers every class; nothing would remain to keep.")
    return ForgetSplit(
        dataset=dataset,
        request=request,
        forget_train=train.select(forget_mask),
        retain_train=train.select(~forget_mask),
        forget_test=test.select(test_mask),
        retain_test=test.select(~test_mask),
        forget_classes=classes,
    )


