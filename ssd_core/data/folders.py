"""Image folders (``DIR/<class>/*.png``, or ``DIR/train/<class>`` and ``DIR/test/<class>``): finding the
class folders, decoding with memory and size limits, and a seeded stratified split when there is no test/."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dataset import ImageDataset
from .files import IMAGE_EXTENSIONS, make_dataset

logger = logging.getLogger("ssd_core.data.files")  # the name its messages have always had


def _class_dirs(root: Path) -> dict[str, list[Path]]:
    """Sub-folders of ``root`` that hold image files, mapped to their sorted image paths."""
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in sub.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if files:
            out[sub.name] = files
    return out


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split; every class with two or more images gets at least one of each."""
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) >= 2 else 0
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))


def read_image_folder(
    data_dir: str | os.PathLike[str], *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[ImageDataset, list[str]]:
    """An image-folder dataset plus the (relative) names of the unreadable files it skipped.

    ``data_dir`` holds ``train/<class>/`` and ``test/<class>/``, or just one sub-folder per class,
    which is then split into train/test (seeded, stratified, ``test_fraction`` for testing).
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"The test fraction must be between 0 and 1, not {test_fraction}.")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise InputError(
            f"Image folder {root} not found: make a folder with one sub-folder of images per class "
            "(or train/ and test/ folders that each hold one sub-folder per class)."
        )
    presplit = (root / "train").is_dir() and (root / "test").is_dir()
    if presplit:
        train_dirs, test_dirs = _class_dirs(root / "train"), _class_dirs(root / "test")
        unknown = sorted(set(test_dirs) - set(train_dirs))
        if unknown:
            raise InputError(
                f"Test class folder '{unknown[0]}' in {root / 'test'} has no matching training folder."
            )
        classes = sorted(train_dirs)
        files = [(p, classes.index(c), True) for c in classes for p in train_dirs[c]]
        files += [(p, classes.index(c), False) for c in sorted(test_dirs) for p in test_dirs[c]]
    else:
        class_dirs = _class_dirs(root)
        classes = sorted(class_dirs)
        files = [(p, i, True) for i, c in enumerate(classes) for p in class_dirs[c]]
    if len(classes) < 2:
        raise InputError(
            f"Image folder {root} needs at least two class sub-folders with images, found {len(classes)}."
        )

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    # Pass 1: headers only (size and mode), to check sizes and size the array.
    from .images import PixelBomb, check_dataset_memory, decode, read_header, stored_size

    max_pixels = 4096 * 4096
    skipped: list[str] = []
    headers: list[tuple[Path, int, bool]] = []
    found = []
    for path, label, is_train in files:
        try:
            header = read_header(path, max_pixels)
        except PixelBomb as bomb:
            what = f"{bomb.size[0]}x{bomb.size[1]} pixels" if bomb.size else "too many pixels"
            raise InputError(f"{rel(path)} is {what}, more than the {max_pixels:,} allowed per image.") from None
        if header is None:
            skipped.append(rel(path))
            continue
        headers.append((path, label, is_train))
        found.append(header)
    if not headers:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        raise InputError(
            f"No readable images in {root}; could not read: {shown or 'nothing found'}."
        )
    width, height, notes = stored_size(found, None, [rel(p) for p, _, _ in headers], square=False)
    for note in notes:
        logger.warning("%s: %s", root, note)
    grey = all(h.grey for h in found)
    channels, mode = (1, "L") if grey else (3, "RGB")
    check_dataset_memory(len(headers), channels, width, height, f"reading the images in {root}")

    # Pass 2: decode into one preallocated uint8 array, one image at a time.
    x = np.empty((len(headers), channels, height, width), dtype=np.uint8)
    y = np.empty(len(headers), dtype=np.int64)
    is_train_arr = np.empty(len(headers), dtype=bool)
    ok = np.zeros(len(headers), dtype=bool)
    for i, (path, label, is_train) in enumerate(headers):
        pixels = decode(path, mode, (width, height))
        if pixels is None:
            skipped.append(rel(path))
            continue
        x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        y[i], is_train_arr[i], ok[i] = label, is_train, True
    if skipped:
        logger.warning(
            "Skipped %d unreadable image(s) in %s: %s", len(skipped), root, ", ".join(skipped)
        )
    if not ok.all():
        x, y, is_train_arr = x[ok], y[ok], is_train_arr[ok]
    if not ok.any():
        raise InputError(f"No readable images in {root}; could not read: {', '.join(skipped[:5])}.")

    if presplit:
        train_idx, test_idx = np.flatnonzero(is_train_arr), np.flatnonzero(~is_train_arr)
    else:
        train_idx, test_idx = stratified_split(y, test_fraction, seed)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise InputError(
            f"Image folder {root} needs readable images for both training and testing; add more images per class."
        )
    dataset = make_dataset(
        "imagefolder", x[train_idx], y[train_idx], x[test_idx], y[test_idx], classes
    )
    return dataset, skipped


def load_image_folder(
    data_dir: str | os.PathLike[str], *, test_fraction: float = 0.2, seed: int = 0
) -> ImageDataset:
    """An image-folder dataset; skipped unreadable files are logged and kept in ``.skipped_files``."""
    dataset, skipped = read_image_folder(data_dir, test_fraction=test_fraction, seed=seed)
    dataset.skipped_files = skipped  # type: ignore[attr-defined]
    return dataset
