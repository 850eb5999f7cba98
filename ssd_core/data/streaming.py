"""Data that does not fit in memory: images read per batch, never all at once.

:class:`StreamingImages` is a torch ``Dataset`` over an image folder (``DIR/<class>/*.png``: only
the paths are held; each image is decoded when its batch is drawn, with the same decoder and
rules as :mod:`.images`) or over CIFAR/MNIST-style record files (memory-mapped: the operating
system pages in what a batch touches). :func:`stream` wraps it in a ``DataLoader`` (unshuffled,
optional worker processes), so the importance pass and evaluation run with memory that depends on
the batch size, not on the number of images.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import InputError
from ..memory import check_batch_size, check_workers


class StreamingImages(Dataset):
    """Images and labels read one at a time (uint8 (C, H, W) tensors, int labels)."""

    def __init__(self, paths: list[Path] | None = None, labels: list[int] | None = None,
                 classes: list[str] | None = None, size: tuple[int, int] | None = None, grey: bool = False,
                 records: np.ndarray | None = None, shape: tuple[int, int, int] | None = None,
                 label_column: int = 0, header: int = 1) -> None:
        self.paths, self.labels = paths, labels
        self.root: Path | None = None
        self.packed_paths: np.ndarray | None = None  # folder(): relative paths as fixed-width bytes
        self.packed_labels: np.ndarray | None = None
        self.classes = classes or []
        self.size, self.grey = size, grey
        self.records, self.shape, self.label_column, self.header = records, shape, label_column, header

    @classmethod
    def folder(cls, root: str | Path, image_size: int | None = None) -> StreamingImages:
        """Every image under ``root/<class>/``; stored at ``image_size`` (default: the first image's size).

        Only the file paths are held, packed as one bytes array (a few bytes per image, not a
        Python object each), with one small label array."""
        from .files import IMAGE_EXTENSIONS
        from .images import max_image_side, read_header

        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError(f"'{str(root)[:120]}' is not a folder.")
        classes, names, counts = [], [], []
        for sub in sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")):
            found: list[str] = []
            for folder, _, files in os.walk(root / sub):
                relative = os.path.relpath(folder, root)
                found.extend(os.path.join(relative, f) for f in files
                             if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
            if found:
                classes.append(sub)
                names.extend(sorted(found))
                counts.append(len(found))
        if len(classes) < 2:
            raise InputError(f"{str(root)[:120]} needs at least two class folders with images.")
        paths = np.array([os.fsencode(n) for n in names])  # fixed-width bytes: no object per image
        del names
        labels = np.repeat(np.arange(len(classes), dtype=np.int16), counts)
        first = read_header(str(root / os.fsdecode(paths[0])), max_pixels=max_image_side() ** 2 * 64)
        if first is None:
            raise InputError(f"The first image, {os.fsdecode(paths[0])[:80]}, cannot be read.")
        side = min(image_size or max(first.width, first.height), max_image_side())
        images = cls(None, None, classes, (side, side), first.grey)
        images.root, images.packed_paths, images.packed_labels = root, paths, labels
        return images

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
        if self.packed_paths is not None:
            return len(self.packed_paths)
        return len(self.paths) if self.paths is not None else int(self.records.shape[0])  # type: ignore[union-attr]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.records is not None:
            row = np.asarray(self.records[index])
            image = row[self.header:].reshape(self.shape)
            return torch.from_numpy(image.copy()), int(row[self.label_column])
        from .images import decode

        assert self.size is not None
        if self.packed_paths is not None and self.packed_labels is not None and self.root is not None:
            path, label = self.root / os.fsdecode(self.packed_paths[index]), int(self.packed_labels[index])
        else:
            assert self.paths is not None and self.labels is not None
            path, label = Path(self.paths[index]), self.labels[index]
        array = decode(str(path), "L" if self.grey else "RGB", self.size)
        if array is None:
            raise InputError(f"{path.name[:80]} cannot be decoded.")
        image = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.array(image, copy=True)), label


def stream(images: Dataset, batch_size: int = 64, workers: int = 0) -> DataLoader:
    """An unshuffled loader over ``images`` (batches in order, so the batch Fisher is the in-memory one's).
    Refuses a batch size or a number of processes past the documented caps before any process starts."""
    check_batch_size(batch_size)
    check_workers(workers)
    return DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers,
                      persistent_workers=False)


def uint8_batches(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) per batch from a loader of :class:`StreamingImages`."""
    for x, y in loader:
        yield x, torch.as_tensor(y)
