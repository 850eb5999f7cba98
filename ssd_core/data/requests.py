"""Forget requests: what to forget, and :func:`make_split`, which turns a request into the four
subsets every method and metric uses (forget-train, retain-train, forget-test, retain-test)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InputError
from .dataset import ImageDataset, Subset

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
    """Turn a forget request into forget/retain train/test subsets, checking it makes sense.

    Args:
        dataset: the dataset the request is about.
        request: a class, sub-class, k random samples or listed training indices.

    Returns:
        The four subsets (forget/retain x train/test; instance requests leave the test set whole
        as retain-test) and the forgotten classes. InputError for a request that cannot be met.
    """
    train, test = dataset.train(), dataset.test()
    n_train = len(train)
    if request.kind == "class":
        cls = resolve_class(dataset, request.target)
        forget_mask = train.y == cls
        test_mask = test.y == cls
        classes: tuple[int, ...] = (cls,)
    elif request.kind == "subclass":
        if dataset.subclass_train_y is None or dataset.subclass_test_y is None or dataset.subclass_names is None:
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
        test_mask = dataset.subclass_test_y == fine
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
