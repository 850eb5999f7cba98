"""Data that does not fit in memory: images read per batch, never all at once.

:class:`StreamingImages` is a torch ``Dataset`` over an image folder (``DIR/<class>/*.png``: only
the paths are held; each image is decoded when its batch is drawn, with the same decoder and
rules as :mod:`.images`) or over CIFAR/MNIST-style record files (memory-mapped: the operating
system pages in what a batch touches). :func:`stream` wraps it in a ``DataLoader`` (unshuffled,
optional worker processes), so the importance pass and evaluation run with memory that depends on
the batch size, not on the number of images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import InputError


class StreamingImages(Dataset):
    """Images and labels read one at a time (uint8 (C, H, W) tensors, int labels)."""

    def __init__(self, paths: list[Path] | None = None, labels: list[int] | None = None,
                 classes: list[str] | None = None, size: tuple[int, int] | None = None, grey: bool = False,
                 records: np.ndarray | None = None, shape: tuple[int, int, int] | None = None,
                 label_column: int = 0, header: int = 1) -> None:
        self.paths, self.labels = paths, labels
        self.classes = classes or []
        self.size, self.grey = size, grey
        self.records, self.shape, self.label_column, self.header = records, shape, label_column, header

    @classmethod
    def folder(cls, root: str | Path, image_size: int | None = None) -> StreamingImages:
        """Every image under ``root/<class>/``; stored at ``image_size`` (default: the first image's size)."""
        from .files import _class_dirs
        from .images import max_image_side, read_header

        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError(f"'{str(root)[:120]}' is not a folder.")
        by_class = _class_dirs(root)
        if len(by_class) < 2:
            raise InputError(f"{str(root)[:120]} needs at least two class folders with images.")
        paths, labels = [], []
        for label, files in enumerate(by_class.values()):
            paths.extend(files)
            labels.extend([label] * len(files))
        first = read_header(str(paths[0]), max_pixels=max_image_side() ** 2 * 64)
        if first is None:
            raise InputError(f"The first image, {paths[0].name[:80]}, cannot be read.")
        side = min(image_size or max(first.width, first.height), max_image_side())
        return cls(paths, labels, list(by_class), (side, side), first.grey)

    @classmethod
    def cifar_file(cls, path: str | Path, fine: bool = False) -> StreamingImages:
        """A CIFAR-10 (1 label byte) or CIFAR-100 (coarse, fine) binary file, memory-mapped."""
        header = 2 if fine else 1
        record = header + 3 * 32 * 32
        size = Path(path).stat().st_size
        if size % record:
            raise InputError(f"{Path(path).name[:80]} is not a CIFAR binary file (its size is not a whole number of records).")
        records = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // record, record))
        return cls(records=records, shape=(3, 32, 32), label_column=1 if fine else 0, header=header)

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else int(self.records.shape[0])  # type: ignore[union-attr]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.records is not None:
            row = np.asarray(self.records[index])
            image = row[self.header:].reshape(self.shape)
            return torch.from_numpy(image.copy()), int(row[self.label_column])
        from .images import decode

        assert self.paths is not None and self.labels is not None and self.size is not None
        array = decode(str(self.paths[index]), "L" if self.grey else "RGB", self.size)
        if array is None:
            raise InputError(f"{self.paths[index].name[:80]} cannot be decoded.")
        image = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.array(image, copy=True)), self.labels[index]


def stream(images: Dataset, batch_size: int = 64, workers: int = 0) -> DataLoader:
    """An unshuffled loader over ``images`` (batches in order, so the batch Fisher is the in-memory one's)."""
    return DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers,
                      persistent_workers=False)


def uint8_batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) per batch from a loader of :class:`StreamingImages`."""
    for x, y in loader:
        yield x, torch.as_tensor(y)
