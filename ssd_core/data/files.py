"""File-based datasets: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100/20 and image folders.

Everything is read straight from the official file formats (IDX, CIFAR binary records) with
``numpy`` and stays uint8 from disk to tensor, so even CIFAR costs only its raw size in memory.
Missing files are downloaded from the official addresses only when asked to (``download=True``);
every problem a user can fix (missing, corrupt or mixed-up files, no network) is an
:class:`~ssd_core.errors.InputError` with one sentence saying what to do.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..progress import OptionalProgress, scaled
from . import downloads
from .dataset import ImageDataset

logger = logging.getLogger(__name__)


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR100_FINE_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip
CIFAR100_COARSE_CLASSES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
]  # fmt: skip

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")

_CIFAR_PIXELS = 3 * 32 * 32
_DOWNLOAD_HINT = "or pass download=True (--download in the CLI)"

# ---------------------------------------------------------------------------------------------
# Entry point


# Where operating-system packages put datasets: Debian's dataset-fashion-mnist installs the original
# IDX .gz files in /usr/share/datasets/fashion-mnist. Searched, read-only, after the lab's own folder.
SYSTEM_DATA_ROOTS = (Path("/usr/share/datasets"),)


def default_data_dir() -> Path:
    """Where datasets live when no directory is given: $UNLEARNING_LAB_DATA or ~/.cache/...
    (downloads go here too)."""
    from ..settings import settings

    return settings().data_dir


def search_roots(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The folders a file dataset is looked for in: ``data_dir`` alone when given, else the lab's data
    folder and then the system's (:data:`SYSTEM_DATA_ROOTS`)."""
    if data_dir is not None and str(data_dir) != "":
        return [Path(data_dir).expanduser()]
    return [default_data_dir(), *SYSTEM_DATA_ROOTS]


def load_file_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool = False,
    *,
    url_base: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: OptionalProgress = None,
) -> ImageDataset:
    """Load one of the file-based datasets by name from ``data_dir`` (downloading if asked; ``progress``
    hears the download)."""
    if name == "imagefolder":
        if data_dir is None:
            raise InputError(
                "The imagefolder dataset needs a data directory with one sub-folder per class "
                "(or train/ and test/ folders that each hold one sub-folder per class)."
            )
        from .folders import load_image_folder

        return load_image_folder(data_dir, test_fraction=test_fraction, seed=seed)
    if name in ("mnist", "fashion_mnist"):
        fashion = name == "fashion_mnist"
        found = next((r for r in search_roots(data_dir) if _mnist_files(r, fashion) is not None), None)
        root = found if found is not None else search_roots(data_dir)[0]
        return load_mnist(root, fashion=fashion, download=download, url_base=url_base, progress=progress)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name == "cifar10":
        return load_cifar10(root, download=download, url_base=url_base, progress=progress)
    if name in ("cifar100", "cifar20"):
        return load_cifar100(root, coarse=name == "cifar20", download=download, url_base=url_base,
                             progress=progress)
    raise InputError(
        f"Unknown file dataset '{name}'; choose one of: mnist, fashion_mnist, cifar10, "
        "cifar100, cifar20, imagefolder."
    )


# ---------------------------------------------------------------------------------------------
# Helpers


def _read_file(path: Path) -> np.ndarray:
    """The bytes of a plain or gzip file as a writable uint8 array."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return np.frombuffer(bytearray(handle.read()), dtype=np.uint8)
        return np.fromfile(path, dtype=np.uint8)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"Could not read {path}: {exc}.") from exc


def _mean_std(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] of uint8 images (N, C, H, W).

    Streams in chunks of at most ``memory.CHUNK_BYTES`` of float32 (a whole dataset is never
    converted at once); the sums are accumulated in float64, so the result does not depend on the
    chunk size beyond rounding."""
    from ..memory import chunk_rows

    channels = x.shape[1]
    total = np.zeros(channels, dtype=np.float64)
    total_sq = np.zeros(channels, dtype=np.float64)
    step = chunk_rows(int(np.prod(x.shape[1:])) * 4)
    for start in range(0, len(x), step):
        chunk = x[start : start + step].astype(np.float32)
        total += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
        np.square(chunk, out=chunk)
        total_sq += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
    count = max(x.shape[0] * x.shape[2] * x.shape[3], 1)
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0) * (count / max(count - 1, 1))
    std = np.sqrt(var)
    std = np.where(std > 0, std, 255.0)  # constant images: avoid dividing by zero later
    return tuple(float(v) / 255 for v in mean), tuple(float(v) / 255 for v in std)


def display_name(name: str, limit: int = 100) -> str:
    """A class name from a folder or file as it may be shown anywhere, figures included: printable,
    at most ``limit`` characters, and '<' '>' replaced by '‹' '›' (plotly renders some HTML tags in
    text, a link among them)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name)).replace("<", "‹").replace(">", "›")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def make_dataset(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: list[str],
    **subclass: object,
) -> ImageDataset:
    """An :class:`ImageDataset` from uint8 arrays (N, C, H, W) and integer labels: computes the
    per-channel mean/std (within the memory budget) and makes class names safe to show."""
    mean, std = _mean_std(train_x)
    classes = [display_name(c) for c in classes]
    return ImageDataset(
        name=name,
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y.astype(np.int64)),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y.astype(np.int64)),
        classes=classes,
        mean=mean,
        std=std,
        **subclass,  # type: ignore[arg-type]
    )


def _read_names(path: Path, expected: int, fallback: list[str]) -> list[str]:
    """Class names, one a line, from a text file; the standard list if it is absent or odd."""
    try:
        lines = [
            line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
    except OSError:
        return list(fallback)
    names = [line for line in lines if line]
    if len(names) != expected or len(set(names)) != expected:
        logger.warning(
            "Ignoring %s: expected %d class names, found %d.", path, expected, len(names)
        )
        return list(fallback)
    return names


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (IDX files)


def _idx_declared_bytes(path: Path) -> int:
    """The bytes an IDX file's header says it holds (read from its first bytes, .gz or not)."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                return 0  # read_idx says what is wrong
            dims = handle.read(4 * head[3])
    except (OSError, EOFError, zlib.error):
        return 0
    if len(dims) < 4 * head[3]:
        return 0
    return int(np.prod(np.frombuffer(dims, dtype=">u4").astype(np.int64), dtype=np.int64)) if head[3] else 0


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (plain or .gz) of unsigned bytes as a uint8 array shaped by its header.

    The size its header declares is checked against the memory budget before the file is read."""
    from ..memory import check_memory

    path = Path(path)
    check_memory(2 * _idx_declared_bytes(path), f"reading {path.name}")
    data = _read_file(path)
    if data.size < 4 or data[0] != 0 or data[1] != 0:
        raise InputError(f"{path} is not an IDX file (bad magic number); it may be corrupt.")
    if data[2] != 0x08:
        raise InputError(
            f"{path} holds IDX type 0x{int(data[2]):02x}, but only unsigned bytes (0x08) are supported."
        )
    ndim = int(data[3])
    header = 4 + 4 * ndim
    if ndim == 0 or data.size < header:
        raise InputError(f"{path} has a truncated IDX header; it may be corrupt.")
    dims = tuple(int(d) for d in data[4:header].view(">u4"))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if data.size != expected:
        raise InputError(
            f"{path} is {data.size} bytes but its header promises {expected}; the file is truncated or corrupt."
        )
    return data[header:].reshape(dims)


def _find_file(dirs: list[Path], filename: str) -> Path | None:
    for directory in dirs:
        for candidate in (directory / filename, directory / f"{filename}.gz"):
            if candidate.is_file():
                return candidate
    return None


def load_mnist(
    data_dir: str | os.PathLike[str],
    *,
    fashion: bool = False,
    download: bool = False,
    url_base: str | None = None,
    progress: OptionalProgress = None,
) -> ImageDataset:
    """MNIST or Fashion-MNIST from the four IDX files in data_dir, data_dir/<name> or .../raw."""
    name = "fashion_mnist" if fashion else "mnist"
    label = "Fashion-MNIST" if fashion else "MNIST"
    root = Path(data_dir).expanduser()
    dirs = _mnist_dirs(root, fashion)
    found = {f: _find_file(dirs, f) for f in IDX_FILES}
    missing = [f for f, p in found.items() if p is None]
    home = root / name
    if missing and download:
        base = url_base if url_base is not None else (FASHION_MNIST_URL if fashion else MNIST_URL)
        for i, filename in enumerate(missing):
            dest = home / f"{filename}.gz"
            downloads.download(base.rstrip("/") + f"/{filename}.gz", dest, label, home,
                      scaled(progress, i / len(missing), (i + 1) / len(missing)))
            found[filename] = dest
        missing = []
    if missing:
        debian = " (on Debian: apt-get install dataset-fashion-mnist)" if fashion else ""
        raise InputError(
            f"{label} files not found: put {', '.join(IDX_FILES[:3])} and {IDX_FILES[3]} "
            f"(or their .gz versions) in {home}{debian}, {_DOWNLOAD_HINT}."
        )
    arrays = {f: read_idx(p) for f, p in found.items() if p is not None}
    splits = []
    for split in ("train", "t10k"):
        images_file, labels_file = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
        images, labels = arrays[images_file], arrays[labels_file]
        if images.ndim != 3:
            raise InputError(
                f"{found[images_file]} should hold images (3 dimensions) but has {images.ndim}."
            )
        if labels.ndim != 1:
            raise InputError(
                f"{found[labels_file]} should hold labels (1 dimension) but has {labels.ndim}."
            )
        if len(images) != len(labels):
            raise InputError(
                f"{found[images_file]} has {len(images)} images but {found[labels_file]} has {len(labels)} labels."
            )
        if labels.size and int(labels.max()) >= 10:
            raise InputError(
                f"{found[labels_file]} has label {int(labels.max())}; {label} labels are 0 to 9."
            )
        splits.append((images[:, None], labels))
    (train_x, train_y), (test_x, test_y) = splits
    classes = FASHION_MNIST_CLASSES if fashion else MNIST_CLASSES
    return make_dataset(name, train_x, train_y, test_x, test_y, list(classes))


# ---------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (binary versions)


def _read_records(paths: list[Path], record: int) -> np.ndarray:
    """Concatenate fixed-size records from several files into one (N, record) uint8 array."""
    sizes = []
    for path in paths:
        size = path.stat().st_size
        if size == 0 or size % record:
            raise InputError(
                f"{path} is {size} bytes, not a whole number of {record}-byte records; it is truncated or corrupt."
            )
        sizes.append(size // record)
    from ..memory import check_memory

    check_memory(3 * sum(sizes) * record, f"reading {', '.join(p.name for p in paths[:3])}")  # records, images, splits
    out = np.empty((sum(sizes), record), dtype=np.uint8)
    start = 0
    for path, n in zip(paths, sizes, strict=True):
        data = _read_file(path)
        if data.size != n * record:
            raise InputError(f"{path} changed while it was being read.")
        out[start : start + n] = data.reshape(n, record)
        start += n
    return out


def _first_dir(candidates: list[Path], required: list[str]) -> Path | None:
    for directory in candidates:
        if all((directory / f).is_file() for f in required):
            return directory
    return None


def _find_cifar10(root: Path) -> Path | None:
    candidates = [
        root / "cifar-10-batches-bin",
        root,
        root / "cifar10" / "cifar-10-batches-bin",
        root / "cifar10",
    ]
    for directory in candidates:
        if (directory / "test_batch.bin").is_file() and any(
            (directory / f"data_batch_{i}.bin").is_file() for i in range(1, 6)
        ):
            return directory
    return None


def _find_cifar100(root: Path) -> Path | None:
    candidates = [
        root / "cifar-100-binary",
        root,
        root / "cifar100" / "cifar-100-binary",
        root / "cifar100",
        root / "cifar20" / "cifar-100-binary",
    ]
    return _first_dir(candidates, ["train.bin", "test.bin"])


def _mnist_dirs(root: Path, fashion: bool) -> list[Path]:
    aliases = ["fashion_mnist", "fashion-mnist", "FashionMNIST"] if fashion else ["mnist", "MNIST"]
    return [root] + [d for alias in aliases for d in (root / alias, root / alias / "raw")]


def _mnist_files(root: Path, fashion: bool) -> dict[str, Path] | None:
    """The four IDX files under ``root`` as the loader finds them, or None when one is missing."""
    dirs = _mnist_dirs(root, fashion)
    found = {f: _find_file(dirs, f) for f in IDX_FILES}
    return None if any(p is None for p in found.values()) else {f: p for f, p in found.items() if p is not None}


def dataset_files_present(name: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the files the loader of file dataset ``name`` needs are in ``data_dir`` (default: the
    lab's data folder, and for MNIST/Fashion-MNIST also :data:`SYSTEM_DATA_ROOTS`), found exactly as the
    loader finds them (nothing is read).
    ``imagefolder`` needs an explicit folder, so it is never listed."""
    if name in ("mnist", "fashion_mnist"):
        return any(_mnist_files(r, name == "fashion_mnist") is not None for r in search_roots(data_dir or None))
    root = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if not root.is_dir():
        return False
    if name == "cifar10":
        return _find_cifar10(root) is not None
    if name in ("cifar100", "cifar20"):
        return _find_cifar100(root) is not None
    return False


def load_cifar10(
    data_dir: str | os.PathLike[str], *, download: bool = False, url_base: str | None = None,
    progress: OptionalProgress = None,
) -> ImageDataset:
    """CIFAR-10 (binary version): any of data_batch_1..5.bin plus test_batch.bin."""
    root = Path(data_dir).expanduser()
    directory = _find_cifar10(root)
    home = root / "cifar-10-batches-bin"
    if directory is None and download:
        url = CIFAR10_URL if url_base is None else url_base.rstrip("/") + "/cifar-10-binary.tar.gz"
        downloads.download_archive(url, root, "CIFAR-10", home, progress)
        directory = _find_cifar10(root)
    if directory is None:
        raise InputError(
            f"CIFAR-10 files not found: put data_batch_1.bin to data_batch_5.bin and test_batch.bin "
            f"(from cifar-10-binary.tar.gz) in {home}, {_DOWNLOAD_HINT}."
        )
    record = 1 + _CIFAR_PIXELS
    batches = [directory / f"data_batch_{i}.bin" for i in range(1, 6)]
    train = _read_records([p for p in batches if p.is_file()], record)
    test = _read_records([directory / "test_batch.bin"], record)
    for path, rows in (
        (directory / "data_batch_*.bin", train),
        (directory / "test_batch.bin", test),
    ):
        if rows.size and int(rows[:, 0].max()) >= 10:
            raise InputError(
                f"{path} has label {int(rows[:, 0].max())}; CIFAR-10 labels are 0 to 9."
            )
    classes = _read_names(directory / "batches.meta.txt", 10, CIFAR10_CLASSES)
    return make_dataset(
        "cifar10",
        np.ascontiguousarray(train[:, 1:]).reshape(-1, 3, 32, 32),
        train[:, 0].copy(),
        np.ascontiguousarray(test[:, 1:]).reshape(-1, 3, 32, 32),
        test[:, 0].copy(),
        classes,
    )


def load_cifar100(
    data_dir: str | os.PathLike[str],
    *,
    coarse: bool = False,
    download: bool = False,
    url_base: str | None = None,
    progress: OptionalProgress = None,
) -> ImageDataset:
    """CIFAR-100 (binary version); ``coarse`` gives cifar20: 20 superclasses, fine sub-classes."""
    root = Path(data_dir).expanduser()
    directory = _find_cifar100(root)
    home = root / "cifar-100-binary"
    if directory is None and download:
        url = (
            CIFAR100_URL if url_base is None else url_base.rstrip("/") + "/cifar-100-binary.tar.gz"
        )
        downloads.download_archive(url, root, "CIFAR-100", home, progress)
        directory = _find_cifar100(root)
    if directory is None:
        raise InputError(
            f"CIFAR-100 files not found: put train.bin and test.bin (from cifar-100-binary.tar.gz) "
            f"in {home}, {_DOWNLOAD_HINT}."
        )
    record = 2 + _CIFAR_PIXELS
    train = _read_records([directory / "train.bin"], record)
    test = _read_records([directory / "test.bin"], record)
    for path, rows in ((directory / "train.bin", train), (directory / "test.bin", test)):
        if int(rows[:, 0].max()) >= 20 or int(rows[:, 1].max()) >= 100:
            raise InputError(
                f"{path} has a label out of range (coarse 0 to 19, fine 0 to 99); the file may be corrupt."
            )
    fine_names = _read_names(directory / "fine_label_names.txt", 100, CIFAR100_FINE_CLASSES)
    train_x = np.ascontiguousarray(train[:, 2:]).reshape(-1, 3, 32, 32)
    test_x = np.ascontiguousarray(test[:, 2:]).reshape(-1, 3, 32, 32)
    if not coarse:
        return make_dataset(
            "cifar100", train_x, train[:, 1].copy(), test_x, test[:, 1].copy(), fine_names
        )
    coarse_names = _read_names(directory / "coarse_label_names.txt", 20, CIFAR100_COARSE_CLASSES)
    return make_dataset(
        "cifar20",
        train_x,
        train[:, 0].copy(),
        test_x,
        test[:, 0].copy(),
        coarse_names,
        subclass_train_y=torch.from_numpy(train[:, 1].astype(np.int64)),
        subclass_test_y=torch.from_numpy(test[:, 1].astype(np.int64)),
        subclass_names=fine_names,
    )
