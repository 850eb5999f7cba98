"""Datasets and forget requests.

- :mod:`.dataset`: the container (:class:`ImageDataset`, :class:`Subset`, batching);
- :mod:`.embedded`: digits and shapes, which need no files;
- :mod:`.files`: MNIST, Fashion-MNIST, CIFAR-10/100/20 binaries and image folders (and finding them);
- :mod:`.images`: decoding image files with memory and size limits;
- :mod:`.requests`: :class:`ForgetRequest` and :func:`make_split`;
- :mod:`.registry`: :func:`register_dataset`, so a new dataset is one registration.

:func:`load_dataset` loads any registered dataset by name.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError
from ..indices import format_indices, parse_indices
from ..progress import OptionalProgress
from .dataset import ImageDataset, Subset, batches, to_float
from .embedded import SHAPE_CLASSES, load_digits, load_shapes
from .registry import DatasetSpec, available_datasets, dataset_spec, register_dataset
from .requests import ForgetRequest, ForgetSplit, RequestKind, make_split, resolve_class

__all__ = [
    "DATASETS", "EMBEDDED_DATASETS", "FILE_DATASETS", "SHAPE_CLASSES", "DatasetSpec", "ForgetRequest", "ForgetSplit",
    "ImageDataset", "RequestKind", "Subset", "available_datasets", "batches", "dataset_spec", "format_indices",
    "load_dataset", "load_digits", "load_shapes", "make_split", "parse_indices", "register_dataset", "resolve_class",
    "to_float",
]

# The built-in datasets (names); every registered one, built-ins and plug-ins: :func:`available_datasets`.
EMBEDDED_DATASETS = ("digits", "shapes")
FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100", "cifar20", "imagefolder")  # the file formats read
DATASETS = EMBEDDED_DATASETS + FILE_DATASETS

_memory: dict[tuple, ImageDataset] = {}


def load_dataset(
    name: str, data_dir: str | None = None, download: bool = False, progress: OptionalProgress = None
) -> ImageDataset:
    """Load a registered dataset by name; embedded ones need nothing, file-based ones read ``data_dir``.

    Results are kept in memory, so asking twice costs nothing. Never mutate what you get.

    Args:
        name: "digits", "shapes" (embedded), a file dataset ("mnist", "fashion_mnist", "cifar10",
            "cifar100", "cifar20", "imagefolder") or one registered with :func:`register_dataset`.
        data_dir: where file datasets are looked for (default: ``UNLEARNING_LAB_DATA``).
        download: fetch missing files (fails with one sentence when offline).
        progress: ``progress(fraction, message)`` callback for a download.

    Returns:
        The dataset: uint8 images (N, C, H, W), labels, class names and normalisation.
    """
    key = (name, data_dir, download)
    if key in _memory:
        return _memory[key]
    spec = dataset_spec(name)
    try:
        dataset = spec.read(data_dir, download, progress)
    except OSError as exc:  # a path the system refuses (too long, a loop, no permission): one sentence
        shown = str(data_dir or "the data folder")
        shown = shown if len(shown) <= 60 else shown[:57] + "…"
        raise InputError(f"Cannot read the {name} files in '{shown}': "
                         f"{exc.strerror or type(exc).__name__}.") from None
    _memory[key] = dataset
    return dataset


def _file_loader(name: str) -> Callable[[str | None, bool, OptionalProgress], ImageDataset]:
    def load(data_dir: str | None, download: bool, progress: OptionalProgress) -> ImageDataset:
        from .files import load_file_dataset

        return load_file_dataset(name, data_dir, download=download, progress=progress)

    load.__qualname__ = f"load_{name}"
    return load


def _files_present(name: str) -> Callable[[str | None], bool]:
    def present(data_dir: str | None) -> bool:
        from .files import dataset_files_present

        return dataset_files_present(name, data_dir)

    return present


def _register_builtins() -> None:
    register_dataset("digits", load_digits, label="Digits — 8×8 handwritten digits")
    register_dataset("shapes", load_shapes, label="Shapes — 32×32 colour shapes", default_model="resnet18_narrow")
    files = {  # name: (label, default model, where the files come from)
        "mnist": ("MNIST — 28×28 digits", "smallcnn", "the MNIST IDX files"),
        "fashion_mnist": ("Fashion-MNIST — 28×28 clothes", "smallcnn",
                          "the Fashion-MNIST IDX files; on Debian: apt-get install dataset-fashion-mnist"),
        "cifar10": ("CIFAR-10 — 32×32 photos", "resnet18", "cifar-10-batches-bin/"),
        "cifar100": ("CIFAR-100 — 32×32 photos", "resnet18", "cifar-100-binary/"),
        "cifar20": ("CIFAR-20 — 20 superclasses", "resnet18", "cifar-100-binary/"),
        "imagefolder": ("your image folder", "smallcnn", "a folder with one sub-folder per class"),
    }
    for name, (label, model, hint) in files.items():
        register_dataset(name, _file_loader(name), label=label, default_model=model, files_present=_files_present(name),
                         hint=hint)


_register_builtins()
