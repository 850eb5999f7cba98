"""The two datasets that ship with the lab: scikit-learn's handwritten digits and generated shapes."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset

# train_test_split(np.arange(1797), test_size=0.2, stratify=labels, random_state=0), as scikit-learn computes it
# (tests/test_data.py checks it still does): kept here so that loading digits needs no scikit-learn import.
DIGITS_TEST_MASK = (  # which of the 1,797 images form the test set, one bit each (np.packbits, hex)
    "000004883524104000064100934205001a00080100240028062c12001000940a009019120420f8a0028110a000080a882044"
    "1524494240a00a0000004004d80000818020004805c400104008a0100005404800301000020ec409000224840083a8013c20"
    "a6980a0000000b08400804a0184802024041c1008004404684376a810216004480004042a0a4180a5000840b8561c6081080"
    "08004c80c02004068e00010882008100380803c008190000100e01008410a0210033282904c044c080680e01028300820088"
    "22a6402c24042108a860809081a00c02820242120138a41500"
)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (images (N, 8, 8) in 0..16, labels), read from scikit-learn's own data file
    without importing scikit-learn: with the scipy and pandas it pulls in, that import was 1.7 s of the
    server's 4.5 s of imports before the first screen here. Falls back to scikit-learn's loader when the file
    is not where its package keeps it."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                data = np.loadtxt(handle, delimiter=",")
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def digits_test_mask() -> np.ndarray:
    """True for the images of the fixed 80/20 split's test set (see ``DIGITS_TEST_MASK``)."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(DIGITS_TEST_MASK), dtype=np.uint8))[:1797].astype(bool)


def load_digits() -> ImageDataset:
    """scikit-learn's 8x8 handwritten digits (1797 images) with a fixed stratified 80/20 split."""
    digits, labels = _digits_arrays()
    images = np.rint(digits * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N,1,8,8)
    test = digits_test_mask()
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
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
