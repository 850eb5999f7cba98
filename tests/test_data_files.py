"""File-based datasets: tiny files in the real formats, read back exactly."""

from __future__ import annotations

import gzip
import io
import logging
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssd_core import data
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.data import files as data_files
from ssd_core.data import folders as data_folders
from ssd_core.data.files import (
    CIFAR10_CLASSES,
    CIFAR100_COARSE_CLASSES,
    CIFAR100_FINE_CLASSES,
    FASHION_MNIST_CLASSES,
    load_file_dataset,
    read_idx,
)
from ssd_core.errors import InputError

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------------------------------------
# Writers for the real formats


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = idx_bytes(arr)
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)


def make_mnist_arrays(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    return {
        "train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": RNG.integers(0, 10, n_test, dtype=np.uint8),
    }


def cifar_records(labels: list[np.ndarray], images: np.ndarray) -> bytes:
    rows = np.concatenate([np.stack(labels, axis=1), images.reshape(len(images), -1)], axis=1)
    return rows.astype(np.uint8).tobytes()


def png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def assert_mean_std(ds: data.ImageDataset) -> None:
    x = ds.train_x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(ds.mean, x.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(ds.std, x.std(axis=(0, 2, 3), ddof=1), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST


def test_mnist_plain_and_gz_in_mixed_places(tmp_path: Path) -> None:
    arrays = make_mnist_arrays()
    # train files plain in <dir>/mnist/raw, test files gzipped directly in <dir>
    write_idx(
        tmp_path / "mnist" / "raw" / "train-images-idx3-ubyte", arrays["train-images-idx3-ubyte"]
    )
    write_idx(
        tmp_path / "mnist" / "raw" / "train-labels-idx1-ubyte", arrays["train-labels-idx1-ubyte"]
    )
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", arrays["t10k-images-idx3-ubyte"])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", arrays["t10k-labels-idx1-ubyte"])

    ds = load_file_dataset("mnist", str(tmp_path))
    assert ds.name == "mnist"
    assert ds.train_x.dtype == torch.uint8 and ds.train_x.shape == (20, 1, 28, 28)
    assert ds.test_x.shape == (10, 1, 28, 28)
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
    assert ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert ds.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert ds.classes == [str(d) for d in range(10)]
    assert_mean_std(ds)


def test_fashion_mnist_gz_and_load_dataset_dispatch(tmp_path: Path) -> None:
    arrays = make_mnist_arrays()
    for name, arr in arrays.items():
        write_idx(tmp_path / "fashion_mnist" / f"{name}.gz", arr)
    ds = load_dataset("fashion_mnist", str(tmp_path))
    assert ds.name == "fashion_mnist"
    assert ds.classes == FASHION_MNIST_CLASSES and ds.classes[0] == "T-shirt/top"
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert ds.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert load_dataset("fashion_mnist", str(tmp_path)) is ds  # cached


def test_read_idx_header(tmp_path: Path) -> None:
    arr = RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    write_idx(tmp_path / "x.gz", arr)
    out = read_idx(tmp_path / "x.gz")
    assert out.shape == (3, 4, 5) and np.array_equal(out, arr)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda b: b[:-7], "truncated or corrupt"),
        (lambda b: b + b"\x00", "truncated or corrupt"),
        (lambda b: b"\x12\x34" + b[2:], "magic number"),
        (lambda b: b[:2] + b"\x0d" + b[3:], "0x0d"),
        (lambda b: b[:6], "truncated IDX header"),
    ],
)
def test_corrupt_idx_raises_input_error_naming_the_file(tmp_path: Path, corrupt, match) -> None:
    arrays = make_mnist_arrays()
    for name, arr in arrays.items():
        write_idx(tmp_path / name, arr)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(corrupt(bad.read_bytes()))
    with pytest.raises(InputError, match=match) as info:
        load_file_dataset("mnist", str(tmp_path))
    assert "train-images-idx3-ubyte" in str(info.value)


def test_broken_gzip_and_label_mismatch(tmp_path: Path) -> None:
    arrays = make_mnist_arrays()
    for name, arr in arrays.items():
        write_idx(tmp_path / f"{name}.gz", arr)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="t10k-labels-idx1-ubyte.gz"):
        load_file_dataset("mnist", str(tmp_path))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(InputError, match="10 images but .* 9 labels"):
        load_file_dataset("mnist", str(tmp_path))


def test_missing_mnist_without_download_says_which_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_file_dataset("mnist", str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path / "nowhere" / "mnist") in message
    assert "download=True" in message and "--download" in message
    with pytest.raises(InputError, match="download=True"):
        load_dataset("mnist", str(tmp_path / "nowhere"))


def test_default_data_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNLEARNING_LAB_DATA", str(tmp_path / "env-data"))
    assert data_files.default_data_dir() == tmp_path / "env-data"
    with pytest.raises(InputError, match="env-data"):
        load_file_dataset("cifar10", None)
    monkeypatch.delenv("UNLEARNING_LAB_DATA")
    assert data_files.default_data_dir() == Path.home() / ".cache" / "unlearning-lab" / "data"


# ---------------------------------------------------------------------------------------------
# Downloads (never touch the network)


def _refuse(*args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100", "cifar20"])
def test_download_offline_gives_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    with pytest.raises(
        InputError, match=r"Could not download .* from https?://.*no network\?.*put the files in"
    ):
        load_file_dataset(name, str(tmp_path), download=True)
    assert not any(p.name.endswith((".part", ".tar.gz")) for p in tmp_path.rglob("*"))


def test_download_to_refusing_port(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Could not download MNIST from http://127\.0\.0\.1:9/"):
        load_file_dataset("mnist", str(tmp_path), download=True, url_base="http://127.0.0.1:9/")
    with pytest.raises(
        InputError, match=r"Could not download CIFAR-10 from http://127\.0\.0\.1:9/"
    ):
        data_files.load_cifar10(tmp_path, download=True, url_base="http://127.0.0.1:9/")


class _FakeWeb:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.asked: list[str] = []

    def __call__(self, url: str, timeout: float | None = None):
        self.asked.append(url)
        assert timeout is not None and timeout <= 60
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)  # type: ignore[arg-type]
        return io.BytesIO(self.files[url])


def test_download_mnist_only_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = make_mnist_arrays()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", arrays["train-images-idx3-ubyte"])
    base = "https://example.invalid/mnist/"
    web = _FakeWeb({f"{base}{n}.gz": gzip.compress(idx_bytes(a)) for n, a in arrays.items()})
    monkeypatch.setattr(urllib.request, "urlopen", web)
    heard: list[tuple[float, str]] = []
    ds = load_file_dataset("mnist", str(tmp_path), download=True, url_base=base,
                           progress=lambda f, m: heard.append((f, m)))
    assert heard and all(m.startswith("downloading MNIST") for _, m in heard)  # the dashboard's progress bar
    assert [f for f, _ in heard] == sorted(f for f, _ in heard) and heard[-1][0] >= 2 / 3
    assert len(web.asked) == 3 and all(u.endswith(".gz") for u in web.asked)
    assert (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert torch.equal(ds.test_x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))


def test_download_http_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _FakeWeb({}))
    with pytest.raises(InputError, match="HTTP 404"):
        load_file_dataset("fashion_mnist", str(tmp_path), download=True)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_download_cifar10_archive_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = RNG.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8)
    records = cifar_records([labels], images)
    archive = _tar_gz(
        {
            "cifar-10-batches-bin/data_batch_1.bin": records,
            "cifar-10-batches-bin/test_batch.bin": records,
        }
    )
    web = _FakeWeb({data_files.CIFAR10_URL: archive})
    monkeypatch.setattr(urllib.request, "urlopen", web)
    ds = load_file_dataset("cifar10", str(tmp_path / "new"), download=True)
    assert web.asked == [data_files.CIFAR10_URL]
    assert torch.equal(ds.train_x, torch.from_numpy(images))
    assert not list((tmp_path / "new").glob("*.tar.gz"))


@pytest.mark.parametrize("evil", ["../escape.bin", "/tmp/abs-escape.bin", "a/../../escape.bin"])
def test_unsafe_archive_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evil: str
) -> None:
    web = _FakeWeb({data_files.CIFAR100_URL: _tar_gz({evil: b"x"})})
    monkeypatch.setattr(urllib.request, "urlopen", web)
    root = tmp_path / "root"
    with pytest.raises(InputError, match="unsafe path"):
        load_file_dataset("cifar100", str(root), download=True)
    assert not (tmp_path / "escape.bin").exists()


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar10_partial_batches_and_names(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    x1 = RNG.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    y1 = (np.arange(12) % 10).astype(np.uint8)
    x3 = RNG.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    y3 = (np.arange(8)[::-1] % 10).astype(np.uint8)
    xt = RNG.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8)
    yt = np.arange(10, dtype=np.uint8)
    (folder / "data_batch_1.bin").write_bytes(cifar_records([y1], x1))
    (folder / "data_batch_3.bin").write_bytes(cifar_records([y3], x3))
    (folder / "test_batch.bin").write_bytes(cifar_records([yt], xt))
    names = [f"thing{i}" for i in range(10)]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")

    ds = load_dataset("cifar10", str(tmp_path))
    assert ds.name == "cifar10" and ds.input_shape == (3, 32, 32)
    assert torch.equal(ds.train_x, torch.from_numpy(np.concatenate([x1, x3])))
    assert ds.train_y.tolist() == y1.tolist() + y3.tolist()
    assert torch.equal(ds.test_x, torch.from_numpy(xt))
    assert ds.test_y.tolist() == yt.tolist()
    assert ds.classes == names
    assert_mean_std(ds)


def test_cifar10_files_directly_in_data_dir_default_names(tmp_path: Path) -> None:
    x = RNG.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    y = np.array([9, 0, 1, 2], dtype=np.uint8)
    (tmp_path / "data_batch_5.bin").write_bytes(cifar_records([y], x))
    (tmp_path / "test_batch.bin").write_bytes(cifar_records([y], x))
    ds = load_file_dataset("cifar10", str(tmp_path))
    assert ds.classes == CIFAR10_CLASSES
    assert torch.equal(ds.test_x, torch.from_numpy(x)) and ds.test_y.tolist() == [9, 0, 1, 2]


def test_cifar10_truncated_and_missing(tmp_path: Path) -> None:
    x = RNG.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    y = np.zeros(4, dtype=np.uint8)
    (tmp_path / "data_batch_1.bin").write_bytes(cifar_records([y], x)[:-5])
    with pytest.raises(InputError, match="test_batch.bin"):  # no test file yet: missing message
        load_file_dataset("cifar10", str(tmp_path))
    (tmp_path / "test_batch.bin").write_bytes(cifar_records([y], x))
    with pytest.raises(InputError, match="data_batch_1.bin is .* truncated or corrupt"):
        load_file_dataset("cifar10", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# CIFAR-100 / CIFAR-20

# fine -> coarse for the classes the tiny set uses (standard CIFAR-100 hierarchy)
FINE_TO_COARSE = {"rocket": "vehicles_2", "lawn_mower": "vehicles_2", "bicycle": "vehicles_1",
                  "apple": "fruit_and_vegetables", "bear": "large_carnivores"}  # fmt: skip


def write_cifar100(folder: Path, names: bool = True) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    fine_names = list(FINE_TO_COARSE)
    out: dict[str, np.ndarray] = {}
    for split, n in (("train", 20), ("test", 10)):
        fine_str = [fine_names[i % len(fine_names)] for i in range(n)]
        fine = np.array([CIFAR100_FINE_CLASSES.index(f) for f in fine_str], dtype=np.uint8)
        coarse = np.array(
            [CIFAR100_COARSE_CLASSES.index(FINE_TO_COARSE[f]) for f in fine_str], dtype=np.uint8
        )
        x = RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        (folder / f"{split}.bin").write_bytes(cifar_records([coarse, fine], x))
        out.update({f"{split}_x": x, f"{split}_fine": fine, f"{split}_coarse": coarse})
    if names:
        (folder / "fine_label_names.txt").write_text("\n".join(CIFAR100_FINE_CLASSES) + "\n")
        (folder / "coarse_label_names.txt").write_text("\n".join(CIFAR100_COARSE_CLASSES) + "\n")
    return out


def test_standard_name_lists() -> None:
    assert len(CIFAR100_FINE_CLASSES) == len(set(CIFAR100_FINE_CLASSES)) == 100
    assert len(CIFAR100_COARSE_CLASSES) == len(set(CIFAR100_COARSE_CLASSES)) == 20
    assert CIFAR100_FINE_CLASSES == sorted(CIFAR100_FINE_CLASSES)
    assert CIFAR100_FINE_CLASSES[69] == "rocket" and CIFAR100_COARSE_CLASSES[19] == "vehicles_2"
    assert len(FASHION_MNIST_CLASSES) == len(CIFAR10_CLASSES) == 10


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    written = write_cifar100(tmp_path / "cifar-100-binary")
    ds = load_dataset("cifar100", str(tmp_path))
    assert ds.name == "cifar100" and ds.num_classes == 100
    assert ds.classes == CIFAR100_FINE_CLASSES
    assert torch.equal(ds.train_x, torch.from_numpy(written["train_x"]))
    assert torch.equal(ds.test_x, torch.from_numpy(written["test_x"]))
    assert ds.train_y.tolist() == written["train_fine"].tolist()
    assert ds.test_y.tolist() == written["test_fine"].tolist()
    assert ds.subclass_train_y is None
    assert_mean_std(ds)


def test_cifar20_coarse_labels_with_subclasses(tmp_path: Path) -> None:
    written = write_cifar100(tmp_path, names=False)  # files directly in data_dir, built-in names
    ds = load_dataset("cifar20", str(tmp_path))
    assert ds.name == "cifar20" and ds.classes == CIFAR100_COARSE_CLASSES
    assert ds.train_y.tolist() == written["train_coarse"].tolist()
    assert ds.test_y.tolist() == written["test_coarse"].tolist()
    assert ds.subclass_names == CIFAR100_FINE_CLASSES
    assert ds.subclass_train_y is not None and ds.subclass_test_y is not None
    assert ds.subclass_train_y.tolist() == written["train_fine"].tolist()
    assert ds.subclass_test_y.tolist() == written["test_fine"].tolist()
    assert torch.equal(ds.train_x, torch.from_numpy(written["train_x"]))

    split = make_split(ds, ForgetRequest(kind="subclass", target="rocket"))
    rocket = CIFAR100_FINE_CLASSES.index("rocket")
    vehicles_2 = CIFAR100_COARSE_CLASSES.index("vehicles_2")
    assert split.forget_classes == (vehicles_2,)
    assert len(split.forget_train) == int((written["train_fine"] == rocket).sum()) == 4
    assert len(split.forget_test) == int((written["test_fine"] == rocket).sum()) == 2
    assert set(split.forget_train.y.tolist()) == {vehicles_2}
    assert torch.equal(
        split.forget_train.x, torch.from_numpy(written["train_x"][written["train_fine"] == rocket])
    )
    # lawn mowers stay: same superclass, other sub-class
    assert vehicles_2 in split.retain_train.y.tolist()
    assert len(split.retain_train) + len(split.forget_train) == 20


def test_cifar100_bad_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    write_cifar100(folder)
    x = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    (folder / "test.bin").write_bytes(
        cifar_records([np.array([3], np.uint8), np.array([150], np.uint8)], x)
    )
    with pytest.raises(InputError, match="test.bin has a label out of range"):
        load_file_dataset("cifar100", str(tmp_path))


def test_missing_cifar100_message(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"CIFAR-100 files not found: put train.bin and test.bin .*download=True"
    ):
        load_file_dataset("cifar20", str(tmp_path))


# ---------------------------------------------------------------------------------------------
# Image folders


def _rgb_folder(
    root: Path, classes=("dog", "cat", "bird"), per_class: int = 5, size=(6, 8)
) -> dict:
    written: dict[bytes, int] = {}
    for cls in classes:
        for i in range(per_class):
            arr = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
            png(root / cls / f"img{i}.png", arr)
            written[arr.transpose(2, 0, 1).tobytes()] = sorted(classes).index(cls)
    return written


def test_image_folder_split_corrupt_file_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "folder"
    written = _rgb_folder(root)
    (root / "cat" / "bad.png").write_bytes(b"\x89PNG this is not really a png")
    (root / "cat" / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING, logger="ssd_core.data.files"):
        ds = load_dataset("imagefolder", str(root))
    assert "cat/bad.png" in caplog.text
    assert ds.skipped_files == ["cat/bad.png"]  # type: ignore[attr-defined]
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.input_shape == (3, 6, 8)
    assert len(ds.train_y) == 12 and len(ds.test_y) == 3
    assert sorted(ds.test_y.tolist()) == [0, 1, 2]  # stratified: one per class
    seen = []
    for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        for img, label in zip(x, y, strict=True):
            key = img.numpy().tobytes()
            assert written[key] == int(label)
            seen.append(key)
    assert sorted(seen) == sorted(written)
    assert_mean_std(ds)

    again = data_folders.load_image_folder(root)
    assert torch.equal(again.test_x, ds.test_x)  # seeded
    other = data_folders.load_image_folder(root, test_fraction=0.4, seed=3)
    assert len(other.test_y) == 6


def test_image_folder_greyscale_with_train_test(tmp_path: Path) -> None:
    root = tmp_path / "grey"
    expected: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "test": []}
    for split, n in (("train", 3), ("test", 2)):
        for label, cls in enumerate(["a_class", "b_class"]):
            for i in range(n):
                arr = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
                png(root / split / cls / f"{i}.png", arr)
                expected[split].append((arr, label))
    ds = load_file_dataset("imagefolder", str(root))
    assert ds.input_shape == (1, 5, 7)
    assert ds.classes == ["a_class", "b_class"]
    assert torch.equal(
        ds.train_x[:, 0], torch.from_numpy(np.stack([a for a, _ in expected["train"]]))
    )
    assert ds.train_y.tolist() == [lab for _, lab in expected["train"]]
    assert torch.equal(
        ds.test_x[:, 0], torch.from_numpy(np.stack([a for a, _ in expected["test"]]))
    )
    assert ds.test_y.tolist() == [lab for _, lab in expected["test"]]


def test_image_folder_mixed_grey_and_rgb_becomes_rgb(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (4, 4), dtype=np.uint8)
    png(tmp_path / "x" / "0.png", grey)
    png(tmp_path / "x" / "1.png", grey)
    png(tmp_path / "y" / "0.jpg", RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    png(tmp_path / "y" / "1.png", RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    ds = load_file_dataset("imagefolder", str(tmp_path))
    assert ds.input_shape == (3, 4, 4)
    all_x = torch.cat([ds.train_x, ds.test_x])
    all_y = torch.cat([ds.train_y, ds.test_y])
    for img in all_x[all_y == 0]:
        assert torch.equal(img, torch.from_numpy(np.stack([grey] * 3)))


def test_image_folder_mixed_sizes(tmp_path: Path) -> None:
    png(tmp_path / "a" / "0.png", np.zeros((8, 8, 3), np.uint8))
    png(tmp_path / "a" / "1.png", np.zeros((8, 8, 3), np.uint8))
    png(tmp_path / "b" / "odd.png", np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(InputError, match=r"different sizes.*b/odd\.png is 8x9"):
        load_file_dataset("imagefolder", str(tmp_path))


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_file_dataset("imagefolder", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="needs a data directory"):
        load_file_dataset("imagefolder", None)
    png(tmp_path / "only" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="at least two class"):
        load_file_dataset("imagefolder", str(tmp_path))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"garbage")
    (tmp_path / "only" / "0.png").write_bytes(b"garbage too")
    with pytest.raises(InputError, match=r"No readable images.*junk/a\.png.*only/0\.png"):
        load_file_dataset("imagefolder", str(tmp_path))
    with pytest.raises(InputError, match="test fraction"):
        data_folders.load_image_folder(tmp_path, test_fraction=1.5)


def test_unknown_file_dataset() -> None:
    with pytest.raises(InputError, match="Unknown file dataset"):
        load_file_dataset("svhn", None)


def test_one_locator_lists_exactly_what_loads(tmp_path: Path) -> None:
    """The sidebar's list comes from the loaders' own locator: a CIFAR-10 folder with only
    test_batch.bin is not listed (it would fail to load), and one that loads is."""
    from ui.resources import available_datasets

    x = RNG.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    y = np.array([9, 0, 1, 2], dtype=np.uint8)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(cifar_records([y], x))
    assert not data_files.dataset_files_present("cifar10", tmp_path)
    assert "cifar10" not in available_datasets(str(tmp_path))
    with pytest.raises(InputError):
        load_file_dataset("cifar10", str(tmp_path))
    (folder / "data_batch_2.bin").write_bytes(cifar_records([y], x))
    assert "cifar10" in available_datasets(str(tmp_path))
    assert load_file_dataset("cifar10", str(tmp_path)).test_y.tolist() == [9, 0, 1, 2]
    arrays = make_mnist_arrays()
    for name, arr in arrays.items():
        if name != "t10k-labels-idx1-ubyte":  # one of the four files missing
            write_idx(tmp_path / "mnist" / name, arr)
    assert "mnist" not in available_datasets(str(tmp_path))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", arrays["t10k-labels-idx1-ubyte"])
    assert "mnist" in available_datasets(str(tmp_path))
    assert len(load_file_dataset("mnist", str(tmp_path)).test_y) == 10


def test_mnist_is_found_in_the_system_folder_without_a_data_dir(tmp_path: Path, monkeypatch) -> None:
    """Where Debian's packages put datasets (/usr/share/datasets/<name>) is searched after the lab's own
    folder when no folder is given; a folder given explicitly is the only one searched."""
    from ssd_core import data as data_package
    from ui.resources import available_datasets

    system, lab = tmp_path / "system", tmp_path / "lab"
    lab.mkdir()
    monkeypatch.setattr(data_files, "SYSTEM_DATA_ROOTS", (system,))
    monkeypatch.setenv("UNLEARNING_LAB_DATA", str(lab))
    monkeypatch.setattr(data_package, "_memory", {})
    assert not data_files.dataset_files_present("mnist")
    with pytest.raises(InputError, match=str(lab / "mnist")):
        load_dataset("mnist")
    arrays = make_mnist_arrays()
    for name, arr in arrays.items():
        write_idx(system / "mnist" / f"{name}.gz", arr)
    assert data_files.dataset_files_present("mnist") and "mnist" in available_datasets()
    assert load_dataset("mnist").train_y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert not data_files.dataset_files_present("mnist", lab)  # an explicit folder is the only one searched
    with pytest.raises(InputError, match="not found"):
        load_file_dataset("mnist", str(lab))
    # the lab's folder comes first: a copy there wins over the system's
    changed = {k: (v + 1) % 10 if "labels" in k else v for k, v in arrays.items()}
    for name, arr in changed.items():
        write_idx(lab / "mnist" / name, arr)
    monkeypatch.setattr(data_package, "_memory", {})
    assert load_dataset("mnist").train_y.tolist() == changed["train-labels-idx1-ubyte"].tolist()


def test_fashion_mnist_missing_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        load_file_dataset("fashion_mnist", str(tmp_path))


def test_debians_fashion_mnist_loads_with_no_data_dir(fashion_mnist) -> None:
    """The real files (Debian's dataset-fashion-mnist; .ci/run installs it): found with no folder given,
    the original sizes, balanced classes and the class names."""
    ds = fashion_mnist
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10
    assert torch.bincount(ds.test_y).tolist() == [1000] * 10


def test_the_dashboard_downloads_a_missing_dataset_with_a_progress_bar(tmp_path: Path, monkeypatch) -> None:
    """'Your own data' offers the public datasets whose files are missing; Download fetches one into the
    lab's data folder (offline: one sentence) and selects it."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from apptest_helpers import new_app, shown_text

    from ssd_core import data as data_package

    monkeypatch.setattr(data_files, "SYSTEM_DATA_ROOTS", (tmp_path / "system",))
    monkeypatch.setenv("UNLEARNING_LAB_DATA", str(tmp_path / "lab"))
    monkeypatch.setattr(data_package, "_memory", {})
    arrays = make_mnist_arrays(200, 50)
    web = _FakeWeb({f"{data_files.MNIST_URL}{n}.gz": gzip.compress(idx_bytes(a)) for n, a in arrays.items()})
    monkeypatch.setattr(urllib.request, "urlopen", web)
    at = new_app()
    at.run()
    assert not at.exception
    offered = at.selectbox(key="download_dataset_name")
    assert set(offered.options) >= {"Fashion-MNIST (30 MB)", "MNIST (12 MB)"}
    offered.set_value("fashion_mnist").run()
    at.button(key="download_dataset").click().run()  # not served by the fake web: the offline sentence
    assert [e for e in at.error if shown_text(e.value).startswith("Could not download Fashion-MNIST from http")]
    assert at.selectbox(key="setup_dataset").value == "digits"
    at.selectbox(key="download_dataset_name").set_value("mnist").run()
    at.button(key="download_dataset").click().run()
    assert not at.exception
    assert at.selectbox(key="setup_dataset").value == "mnist"
    assert any(shown_text(s.value).startswith("Downloaded MNIST (12 MB)") for s in at.success)
    assert (tmp_path / "lab" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert len(web.asked) == 4 + 1  # the four MNIST files, and Fashion-MNIST's first (refused)
