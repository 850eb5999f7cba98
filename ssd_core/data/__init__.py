"""Datasets and forget requests.

- :mod:`.dataset`: the container (:class:`ImageDataset`, :class:`Subset`, batching);
- :mod:`.embedded`: digits and shapes, which need no files;
- :mod:`.files`: MNIST, Fashion-MNIST, CIFAR-10/100/20 binaries and image folders (and finding them);
- :mod:`.images`: decoding image files with memory and size limits;
- :mod:`.requests`: :class:`ForgetRequest` and :func:`make_split`.

:func:`load_dataset` loads any of them by name.
"""

from __future__ import annotations

from ..errors import InputError
from ..indices import format_indices, parse_indices
from ..progress import OptionalProgress
from .dataset import ImageDataset, Subset, batches, to_float
from .embedded import SHAPE_CLASSES, load_digits, load_shapes
from .requests import ForgetRequest, ForgetSplit, RequestKind, make_split, resolve_class

__all__ = [
    "DATASETS", "EMBEDDED_DATASETS", "FILE_DATASETS", "SHAPE_CLASSES", "ForgetRequest", "ForgetSplit", "ImageDataset",
    "RequestKind", "Subset", "batches", "format_indices", "load_dataset", "load_digits", "load_shapes", "make_split",
    "parse_indices", "resolve_class", "to_float",
]

EMBEDDED_DATASETS = ("digits", "shapes")
FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "cifar20", "imagefolder")
DATASETS = EMBEDDED_DATASETS + FILE_DATASETS

_memory: dict[tuple, ImageDataset] = {}


def load_dataset(
    name: str, data_dir: str | None = None, download: bool = False, progress: OptionalProgress = None
) -> ImageDataset:
    """Load a dataset by name; embedded ones need nothing, file-based ones read ``data_dir``.

    Results are kept in memory, so asking twice costs nothing. Never mutate what you get.

    Args:
        name: "digits", "shapes" (embedded) or a file dataset ("mnist", "fashion_mnist", "cifar10",
            "cifar100", "cifar20"; see ``DATASETS``).
        data_dir: where file datasets are looked for (default: ``UNLEARNING_LAB_DATA``).
        download: fetch missing files (fails with one sentence when offline).
        progress: ``progress(fraction, message)`` callback for a download.

    Returns:
        The dataset: uint8 images (N, C, H, W), labels, class names and normalisation.
    """
    key = (name, data_dir, download)
    if key in _memory:
        return _memory[key]
    if name == "digits":
        dataset = load_digits()
    elif name == "shapes":
        dataset = load_shapes()
    elif name in FILE_DATASETS:
        from .files import load_file_dataset

        try:
            dataset = load_file_dataset(name, data_dir, download=download, progress=progress)
        except OSError as exc:  # a path the system refuses (too long, a loop, no permission): one sentence
            shown = str(data_dir or "the data folder")
            shown = shown if len(shown) <= 60 else shown[:57] + "…"
            raise InputError(f"Cannot read the {name} files in '{shown}': "
                             f"{exc.strerror or type(exc).__name__}.") from None
    else:
        raise InputError(
            f"Unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}."
        )
    _memory[key] = dataset
    return dataset
