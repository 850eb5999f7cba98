"""Dataset zips and local data directories from users: what loads, and what is refused."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hostile import png, zip_of
from PIL import Image

from ssd_core.errors import InputError
from unlearning_lab.uploads import UploadLimits, check_local_data_dir, load_image_zip

_png = png
_zip = zip_of


def _two_classes(n: int = 5, prefix: str = "", size=(8, 8)) -> dict[str, bytes]:
    entries = {f"{prefix}red/{i}.png": _png((255, 0, 0), size) for i in range(n)}
    entries.update({f"{prefix}blue/{i}.png": _png((0, 0, 255), size) for i in range(n)})
    return entries


def _refused(data, **kwargs) -> str:
    kwargs.setdefault("image_size", None)
    with pytest.raises(InputError) as info:
        load_image_zip(data, **kwargs)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message
    return message


# ---------------------------------------------------------------------------------------------
# What loads


def test_valid_zip_with_wrapper_folder_gives_classes_counts_pixels_and_stats():
    entries = _two_classes(5, prefix="my_shapes/")
    entries["my_shapes/README.txt"] = b"hello"
    entries["__MACOSX/my_shapes/._red"] = b"junk"
    result = load_image_zip(_zip(entries), image_size=None, test_fraction=0.2, seed=0)
    ds = result.dataset
    assert ds.classes == ["blue", "red"]
    assert ds.input_shape == (3, 8, 8)
    assert (len(ds.train_y), len(ds.test_y)) == (8, 2)
    assert sorted(ds.test_y.tolist()) == [0, 1]  # stratified: one test image per class
    red = ds.train_x[ds.train_y == 1]
    assert red.shape == (4, 3, 8, 8)
    assert red[:, 0].eq(255).all() and red[:, 1:].eq(0).all()
    assert ds.mean == pytest.approx((0.5, 0.0, 0.5))
    assert ds.std[0] == pytest.approx(np.std([0.0] * 256 + [1.0] * 256, ddof=1))
    assert ds.std[1] == pytest.approx(1.0)  # constant channel: std 255/255, as the library does elsewhere
    assert result.skipped == []
    assert result.warnings == ["Ignored 1 file(s) that are not images: my_shapes/README.txt."]
    again = load_image_zip(_zip(entries), image_size=None, seed=0).dataset
    assert again.fingerprint() == ds.fingerprint()  # seeded split


def test_train_test_folders_and_greyscale():
    entries = {f"data/train/{c}/{i}.png": _png(v, mode="L") for c, v in (("dark", 10), ("light", 240)) for i in range(3)}
    entries.update({f"data/test/{c}/0.png": _png(v, mode="L") for c, v in (("dark", 10), ("light", 240))})
    result = load_image_zip(_zip(entries), image_size=None, test_fraction=0.5)
    ds = result.dataset
    assert ds.input_shape == (1, 8, 8)
    assert (len(ds.train_y), len(ds.test_y)) == (6, 2)
    assert ds.test_x[ds.test_y == 1].eq(240).all()
    assert "Using the zip's own train/ and test/ folders as the split." in result.warnings


def test_mixed_grey_and_rgb_become_rgb():
    entries = {"a/0.png": _png(100, mode="L"), "a/1.png": _png(100, mode="L"), "b/0.png": _png((0, 200, 0)), "b/1.png": _png((0, 200, 0))}
    ds = load_image_zip(_zip(entries), image_size=None).dataset
    assert ds.input_shape == (3, 8, 8)
    grey = ds.train_x[ds.train_y == 0] if (ds.train_y == 0).any() else ds.test_x[ds.test_y == 0]
    assert grey.eq(100).all()


def test_mixed_sizes_need_an_image_size_and_are_resized_to_it():
    entries = {"a/small.png": _png((0, 0, 0), (28, 28)), "a/big.png": _png((0, 0, 0), (32, 32))}
    entries.update({f"b/{i}.png": _png((255, 255, 255), (32, 32)) for i in range(2)})
    message = _refused(_zip(entries))
    assert message == (
        "The images have different sizes (a/small.png is 28x28, a/big.png is 32x32); pick an image size to resize to."
    )
    result = load_image_zip(_zip(entries), image_size=16)
    assert result.dataset.input_shape == (3, 16, 16)
    assert "Resized 4 image(s) to 16x16 (aspect ratios not kept)." in result.warnings
    assert result.dataset.train_x[result.dataset.train_y == 1].eq(255).all()


def test_unreadable_image_is_skipped_and_named():
    entries = _two_classes(3)
    entries["red/broken.png"] = b"this is not a png"
    entries["blue/cut.png"] = _png((0, 0, 255))[:40]
    result = load_image_zip(_zip(entries), image_size=None)
    assert sorted(result.skipped) == ["blue/cut.png", "red/broken.png"]
    assert any(w.startswith("Skipped 2 unreadable image(s): ") and "red/broken.png" in w for w in result.warnings)
    assert len(result.dataset.train_y) + len(result.dataset.test_y) == 6


# ---------------------------------------------------------------------------------------------
# Refused: structure


def test_one_class_is_refused():
    entries = {f"wrapper/cats/{i}.png": _png((1, 2, 3)) for i in range(4)}
    entries["wrapper/dogs/bad.png"] = b"not an image"
    message = _refused(_zip(entries))
    assert message == (
        "A dataset needs at least two classes (one folder of images per class), but the zip has 1 (cats)."
    )


def test_not_a_zip_empty_and_no_images():
    assert _refused(b"") == "The upload is empty."
    assert _refused(b"PK\x03\x04 definitely not a zip") == "The upload is not a valid zip file."
    assert _refused(_zip({"notes/a.txt": b"x"})).startswith("The zip has no images")


def test_too_many_files_is_refused():
    entries = _two_classes(5)
    assert _refused(_zip(entries), limits=UploadLimits(max_files=6)) == "The zip has 10 files, more than the 6 allowed."
    many = {f"a/{i}.txt": b"" for i in range(200)}
    assert _refused(_zip(many), limits=UploadLimits(max_files=1)) == (
        "The zip has too many entries: at most 1 files are allowed."
    )


# ---------------------------------------------------------------------------------------------
# Refused: unsafe paths


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../escape/x.png", "('..' leaves the folder)"),
        ("data/../../x.png", "('..' leaves the folder)"),
        ("data\\..\\..\\x.png", "('..' leaves the folder)"),
        ("/etc/cron.d/x.png", "(an absolute path)"),
        ("C:/Windows/x.png", "(a drive letter)"),
    ],
)
def test_unsafe_paths_are_refused(name, why):
    entries = _two_classes(2)
    entries[name] = _png((0, 0, 0))
    message = _refused(_zip(entries))
    assert message == f"The zip is refused because it contains the unsafe path '{name}' {why}."


def test_symlink_entry_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in _two_classes(2).items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("red/link.png")
        link.create_system = 3
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    assert _refused(buf.getvalue()) == (
        "The zip is refused because it contains a symbolic link ('red/link.png'); zip the image files themselves."
    )


# ---------------------------------------------------------------------------------------------
# Refused: sizes and bombs


def test_zip_bomb_is_refused_from_headers():
    entries = _two_classes(2)
    entries["red/bomb.bmp"] = bytes(50 * 1024 * 1024)  # 50 MB of zeros -> ~50 KB deflated
    message = _refused(_zip(entries))
    assert message.startswith("The zip is refused as a possible zip bomb: 'red/bomb.bmp' expands ")
    assert message.endswith("times (at most 200 is allowed).")


def test_total_uncompressed_size_is_capped():
    message = _refused(_zip(_two_classes(5), zipfile.ZIP_STORED), limits=UploadLimits(max_total_bytes=500))
    assert message.startswith("The zip unpacks to ") and message.endswith("more than the 500 bytes allowed.")


def test_lying_size_headers_are_caught_while_reading():
    entries = _two_classes(2)
    real = _png((0, 255, 0), (16, 16))
    entries["red/liar.png"] = real
    data = bytearray(_zip(entries, zipfile.ZIP_STORED))
    # Claim 60 bytes instead of len(real), in the local header and the central directory.
    packed = struct.pack("<I", len(real))
    count = 0
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(sig, start)) != -1:
            name_len = struct.unpack_from("<H", data, start + (26 if sig == b"PK\x03\x04" else 28))[0]
            header = 30 if sig == b"PK\x03\x04" else 46
            if data[start + header : start + header + name_len] == b"red/liar.png":
                assert data[start + offset : start + offset + 4] == packed
                data[start + offset : start + offset + 4] = struct.pack("<I", 60)
                count += 1
            start += 4
    assert count == 2
    message = _refused(bytes(data))
    assert message.startswith("The zip file is damaged: 'red/liar.png' cannot be unpacked (")
    assert message.endswith("); re-create the zip.")


def test_image_with_too_many_pixels_is_refused_before_decoding():
    entries = _two_classes(2)
    entries["red/huge.png"] = _png((0, 0, 0), (100, 80))
    message = _refused(_zip(entries), limits=UploadLimits(max_image_pixels=64 * 64))
    assert message == (
        "The zip is refused because 'red/huge.png' is 100x80 pixels, more than the 4,096 (64x64) allowed per image."
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_dimensions_are_refused():
    entries = _two_classes(2)
    entries["blue/bomb.png"] = _png_header_only(6000, 6000)  # 36 M pixels, over the 16.8 M default
    assert _refused(_zip(entries)) == (
        "The zip is refused because 'blue/bomb.png' is 6000x6000 pixels, more than the 16,777,216 (4096x4096) allowed per image."
    )
    entries["blue/bomb.png"] = _png_header_only(100_000, 100_000)  # past Pillow's own bomb limit too
    assert _refused(_zip(entries)) == (
        "The zip is refused because 'blue/bomb.png' has too many pixels, more than the 16,777,216 (4096x4096) allowed per image."
    )


def test_decoded_dataset_size_is_capped():
    message = _refused(_zip(_two_classes(5)), image_size=64, limits=UploadLimits(max_dataset_bytes=10_000))
    assert message == (
        "The dataset would take 120 KB in memory, more than the 9.766 KB allowed; pick a smaller image size or upload fewer images."
    )


def test_total_pixels_are_capped():
    message = _refused(_zip(_two_classes(5)), limits=UploadLimits(max_total_pixels=600))
    assert message == "The images hold 640 pixels in all, more than the 600 allowed; upload fewer or smaller images."


def test_large_jpegs_are_downscaled_to_the_image_size():
    def jpeg(color) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (256, 256), color).save(buf, "JPEG", quality=95)
        return buf.getvalue()

    entries = {f"{c}/{i}.jpg": jpeg(v) for c, v in (("red", (250, 0, 0)), ("green", (0, 250, 0))) for i in range(2)}
    ds = load_image_zip(_zip(entries), image_size=16).dataset
    assert ds.input_shape == (3, 16, 16)
    red = ds.train_x[ds.train_y == 1].float()
    assert (red[:, 0] - 250).abs().max() <= 6 and red[:, 1:].max() <= 6


def test_encrypted_member_is_refused():
    data = bytearray(_zip(_two_classes(2)))
    start = data.find(b"PK\x01\x02")  # first central directory entry: set "encrypted" (bit 0)
    data[start + 8] |= 0x1
    assert _refused(bytes(data)) == "The zip is password-protected ('red/0.png'); upload an unencrypted zip."


def test_env_overrides_limits(monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_UPLOAD_MAX_FILES", "3")
    monkeypatch.setenv("UNLEARNING_LAB_UPLOAD_MAX_PIXELS", "1000")
    limits = UploadLimits()
    assert (limits.max_files, limits.max_image_pixels) == (3, 1000)
    assert _refused(_zip(_two_classes(2))) == "The zip has 4 files, more than the 3 allowed."


# ---------------------------------------------------------------------------------------------
# Local data directories


def test_local_data_dir_allow_list(tmp_path, monkeypatch):
    root = tmp_path / "datasets"
    (root / "mnist").mkdir(parents=True)
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "sneaky").symlink_to(outside)

    assert check_local_data_dir(str(root / "mnist"), [str(root)]) == (root / "mnist").resolve()
    assert check_local_data_dir(str(root / "new"), [str(root)]) == (root / "new").resolve()  # may not exist yet
    for bad in (outside, root / "sneaky", root / ".." / "private", Path("/etc")):
        with pytest.raises(InputError) as info:
            check_local_data_dir(str(bad), [str(root)])
        assert str(info.value) == (
            f"Reading data from '{bad}' is not allowed on this server; use a folder under: {root.resolve()}."
        )

    monkeypatch.setenv("UNLEARNING_LAB_DATA_ROOTS", f"{outside}:{root}")
    assert check_local_data_dir(str(root / "sneaky")) == outside.resolve()

    monkeypatch.delenv("UNLEARNING_LAB_DATA_ROOTS")
    monkeypatch.setenv("UNLEARNING_LAB_DATA", str(root))  # the default data dir is the only root
    assert check_local_data_dir(str(root / "mnist")) == (root / "mnist").resolve()
    with pytest.raises(InputError, match="is not allowed on this server"):
        check_local_data_dir(str(outside))
