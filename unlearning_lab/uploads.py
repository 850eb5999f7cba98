"""User-supplied datasets: a zip of an image folder, and local data directories.

Uploads are untrusted. :func:`load_image_zip` reads a zip entirely in memory (nothing is ever
extracted to disk) and checks it before use:

- the upload size, the number of entries (from the end-of-archive record, *before* the central
  directory is parsed) and the number of files;
- every path: no ``..``, no absolute paths or drive letters, no symbolic links, no NUL bytes;
- the total uncompressed size from the zip headers, the compression ratio (zip bombs), and again
  the bytes actually read while reading (in case the headers lie); encrypted members and unknown
  compression methods are refused;
- every image's pixel count from its header, before it is decoded (decompression bombs); only
  plain raster formats are opened (PNG, JPEG, BMP, GIF, WebP, TIFF, PPM/PGM);
- the size of the decoded dataset in memory.

Unreadable images are skipped and reported by name. Limits come from :class:`UploadLimits`
(defaults overridable with the environment variables listed below).

:func:`check_local_data_dir` decides whether a server may read a local directory (for the
file-based datasets): only under allowed roots (``UNLEARNING_LAB_DATA_ROOTS``), symlinks resolved.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ssd_core.data import ImageDataset
from ssd_core.data.files import IMAGE_EXTENSIONS, make_dataset
from ssd_core.data.folders import stratified_split
from ssd_core.data.images import HEADER_BYTES, Header, PixelBomb, check_dataset_memory, decode, read_header, stored_size
from ssd_core.errors import InputError
from ssd_core.memory import size_text
from ssd_core.settings import settings

log = logging.getLogger(__name__)

MB = 1024 * 1024

_SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_SPLIT_TEST_NAMES = ("test", "val", "valid", "validation")
_BYTES_PER_CENTRAL_ENTRY = 512  # generous: 46 fixed bytes + name + extras
_READ_CHUNK = 1 * MB


@dataclass(frozen=True)
class UploadLimits:
    """Caps for one uploaded dataset zip; each default can be overridden by an environment variable.

    ======================  ======================================  ===============================
    field                   environment variable                    default
    ======================  ======================================  ===============================
    max_upload_bytes        UNLEARNING_LAB_UPLOAD_MAX_ZIP_MB        500 MB (the zip itself)
    max_files               UNLEARNING_LAB_UPLOAD_MAX_FILES         20,000
    max_total_bytes         UNLEARNING_LAB_UPLOAD_MAX_MB            500 MB (uncompressed)
    max_image_pixels        UNLEARNING_LAB_UPLOAD_MAX_PIXELS        4096*4096 per image
    max_total_pixels        UNLEARNING_LAB_UPLOAD_MAX_TOTAL_PIXELS  2e9, all images (decoding time)
    max_compression_ratio   UNLEARNING_LAB_UPLOAD_MAX_RATIO         200
    max_dataset_bytes       UNLEARNING_LAB_UPLOAD_MAX_DATASET_MB    2048 MB (the decoded uint8 data)
    ======================  ======================================  ===============================

    The ratio is only checked for members (and totals) above ``ratio_min_bytes`` (1 MB): tiny
    files compress well without being bombs. Read the environment when constructed.
    """

    max_upload_bytes: int = field(default_factory=lambda: int(settings().upload_max_zip_mb * MB))
    max_files: int = field(default_factory=lambda: settings().upload_max_files)
    max_total_bytes: int = field(default_factory=lambda: int(settings().upload_max_mb * MB))
    max_image_pixels: int = field(default_factory=lambda: settings().upload_max_pixels)
    max_total_pixels: int = field(default_factory=lambda: settings().upload_max_total_pixels)
    max_compression_ratio: float = field(default_factory=lambda: settings().upload_max_ratio)
    max_dataset_bytes: int = field(default_factory=lambda: int(settings().upload_max_dataset_mb * MB))
    ratio_min_bytes: int = 1 * MB


@dataclass
class UploadResult:
    """The dataset, the images that could not be read (zip paths), and notes for the user."""

    dataset: ImageDataset
    skipped: list[str]
    warnings: list[str]


def _shown(name: str, limit: int = 100) -> str:
    """A member name safe to put in a message: no control characters, not too long."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in name)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(_shown(n, 60) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# The archive


def _open_upload(source: bytes | str | os.PathLike[str] | BinaryIO, max_bytes: int) -> BinaryIO:
    """The upload as a seekable binary file: bytes are wrapped, a path is opened (never read into
    memory whole: the zip is read member by member from disk), an open file is used as it is."""
    too_big = f"The upload is larger than the {size_text(max_bytes)} limit."
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise InputError(too_big)
        handle: BinaryIO = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        handle = source  # type: ignore[assignment]
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"The zip file '{_shown(str(path))}' does not exist.")
        handle = open(path, "rb")  # closed by load_image_zip
    try:
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        handle.seek(0)
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError("The upload must be a seekable binary file.") from exc
    if size == 0:
        raise InputError("The upload is empty.")
    if size > max_bytes:
        raise InputError(too_big)
    return handle


def _precheck_directory(handle: BinaryIO, limits: UploadLimits) -> None:
    """Count entries from the end-of-archive record before Python parses the whole directory."""
    max_entries = 2 * limits.max_files + 100  # files plus their folders
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:  # pragma: no cover - private helper gone in some future Python
        return
    try:
        record = end_record(handle)
        handle.seek(0)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError("The upload is not a valid zip file.") from exc
    if not record:
        raise InputError("The upload is not a valid zip file.")
    # the end-of-central-directory record's total entries and directory size (fields 4 and 5)
    entries, directory_size = record[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)], record[getattr(zipfile, "_ECD_SIZE", 5)]
    if entries > max_entries or directory_size > max_entries * _BYTES_PER_CENTRAL_ENTRY:
        raise InputError(f"The zip has too many entries: at most {limits.max_files} files are allowed.")


def _check_name(info: zipfile.ZipInfo) -> None:
    """Refuse traversal, absolute paths, drive letters, NUL bytes and symbolic links."""
    raw = info.orig_filename
    refuse = f"The zip is refused because it contains the unsafe path '{_shown(raw)}'"
    if "\x00" in raw:
        raise InputError(f"{refuse} (a NUL byte in a name).")
    if raw.startswith(("/", "\\")):
        raise InputError(f"{refuse} (an absolute path).")
    if re.match(r"^[A-Za-z]:", raw):
        raise InputError(f"{refuse} (a drive letter).")
    if ".." in re.split(r"[/\\]", raw):
        raise InputError(f"{refuse} ('..' leaves the folder).")
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
        raise InputError(
            f"The zip is refused because it contains a symbolic link ('{_shown(raw)}'); zip the image files themselves."
        )


def _screen(infos: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    """Header checks over every member: names, counts, sizes, ratios, encryption, methods."""
    files = [info for info in infos if not info.is_dir()]
    if len(files) > limits.max_files:
        raise InputError(f"The zip has {len(files)} files, more than the {limits.max_files} allowed.")
    for info in infos:
        _check_name(info)
    total = compressed = 0
    for info in files:
        if info.flag_bits & 0x1:
            raise InputError(f"The zip is password-protected ('{_shown(info.filename)}'); upload an unencrypted zip.")
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            raise InputError(
                f"The zip uses an unsupported compression method for '{_shown(info.filename)}'; re-create it with standard "
                "(deflate) compression."
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_compression_ratio:
            raise InputError(
                f"The zip is refused as a possible zip bomb: '{_shown(info.filename)}' expands {ratio:.0f} times "
                f"(at most {limits.max_compression_ratio:g} is allowed)."
            )
        total += info.file_size
        compressed += info.compress_size
    if total > limits.max_total_bytes:
        raise InputError(
            f"The zip unpacks to {size_text(total)}, more than the {size_text(limits.max_total_bytes)} allowed."
        )
    if total > limits.ratio_min_bytes and total / max(compressed, 1) > limits.max_compression_ratio:
        raise InputError(
            f"The zip is refused as a possible zip bomb: it expands {total / max(compressed, 1):.0f} times "
            f"(at most {limits.max_compression_ratio:g} is allowed)."
        )


class _Budget:
    """Counts the bytes actually decompressed, whatever the headers say."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, head: int | None = None) -> bytes:
        """The member's bytes (only the first ``head`` bytes when given), counted against the budget."""
        chunks: list[bytes] = []
        size = 0
        try:
            with archive.open(info) as handle:
                while head is None or size < head:
                    chunk = handle.read(_READ_CHUNK if head is None else min(_READ_CHUNK, head - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    self.used += len(chunk)
                    if size > info.file_size:
                        raise InputError(
                            f"The zip is refused because its headers are inconsistent: '{_shown(info.filename)}' is larger than it claims."
                        )
                    if self.used > self.limit:
                        raise InputError(f"The zip unpacks to more than the {size_text(self.limit)} allowed.")
                    chunks.append(chunk)
        except InputError:
            raise
        except Exception as exc:  # whatever the decompressor raises: one sentence
            raise InputError(
                f"The zip file is damaged: '{_shown(info.filename)}' cannot be unpacked ({_shown(str(exc), 60)}); re-create the zip."
            ) from exc
        return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# Folder layout


@dataclass
class _Member:
    info: zipfile.ZipInfo
    name: str  # the path inside the zip, for messages
    class_name: str
    is_train: bool


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[/\\]", name) if p and p != "."]


def _layout(infos: list[zipfile.ZipInfo], warnings: list[str]) -> tuple[list[_Member], list[str], bool]:
    """Image members with their class and split; the sorted class names; whether train/test were given."""
    images: list[tuple[zipfile.ZipInfo, list[str]]] = []
    ignored: list[str] = []
    for info in infos:
        if info.is_dir():
            continue
        parts = _parts(info.filename)
        if not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            continue  # macOS resource forks, .DS_Store and other hidden files
        if Path(parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
            ignored.append(info.filename)
            continue
        images.append((info, parts))
    if ignored:
        warnings.append(f"Ignored {len(ignored)} file(s) that are not images: {_listing(ignored)}.")
    if not images:
        raise InputError(
            "The zip has no images; put one folder of images per class in it (PNG, JPEG, BMP, GIF, WebP, TIFF or PPM)."
        )

    # Strip wrapper folders ("my_dataset/cats/1.png" -> "cats/1.png").
    split_names = ("train", *_SPLIT_TEST_NAMES)
    while (
        len({p[0] for _, p in images}) == 1
        and images[0][1][0].lower() not in split_names
        and all(len(p) >= 3 for _, p in images)
    ):
        images = [(info, p[1:]) for info, p in images]

    tops = {p[0].lower() for _, p in images if len(p) >= 2}
    test_name = next((n for n in _SPLIT_TEST_NAMES if n in tops), None)
    presplit = "train" in tops and test_name is not None
    if "train" in tops and len(tops) == 1:  # only train/<class>/<file>: train is a wrapper
        images = [(info, p[1:]) for info, p in images if len(p) >= 2]
    members: list[_Member] = []
    loose: list[str] = []
    other_splits: set[str] = set()
    for info, parts in images:
        if presplit:
            split = parts[0].lower()
            if split not in ("train", test_name) or len(parts) < 3:
                if split not in ("train", test_name):
                    other_splits.add(parts[0])
                else:
                    loose.append(info.filename)
                continue
            members.append(_Member(info, info.filename, parts[1], split == "train"))
        elif len(parts) >= 2:
            members.append(_Member(info, info.filename, parts[0], True))
        else:
            loose.append(info.filename)
    if loose:
        warnings.append(f"Ignored {len(loose)} image(s) outside any class folder: {_listing(loose)}.")
    if other_splits:
        warnings.append(f"Ignored the folder(s) {_listing(sorted(other_splits))} next to train/ and {test_name}/.")
    for member in members:  # class names are shown in the UI: no control characters, bounded length
        member.class_name = _shown(member.class_name)
    classes = sorted({m.class_name for m in members if m.is_train})
    unknown = sorted({m.class_name for m in members if not m.is_train} - set(classes))
    if unknown:
        raise InputError(f"The test class folder '{_shown(unknown[0])}' has no matching folder in train/.")
    if presplit:
        warnings.append(f"Using the zip's own train/ and {test_name}/ folders as the split.")
    return members, classes, presplit


# ---------------------------------------------------------------------------------------------
# Images


def _too_many_pixels(name: str, size: tuple[int, int] | None, limits: UploadLimits) -> InputError:
    side = int(math.isqrt(limits.max_image_pixels))
    what = f"is {size[0]}x{size[1]} pixels" if size else "has too many pixels"
    return InputError(
        f"The zip is refused because '{_shown(name)}' {what}, more than the {limits.max_image_pixels:,} "
        f"({side}x{side}) allowed per image."
    )


def _header(budget: _Budget, archive: zipfile.ZipFile, member: _Member, limits: UploadLimits) -> Header | None:
    """An image's header from the first bytes of its member (all of it only when that is not enough)."""
    try:
        header = read_header(budget.read(archive, member.info, head=HEADER_BYTES), limits.max_image_pixels)
        if header is None and member.info.file_size > HEADER_BYTES:
            header = read_header(budget.read(archive, member.info), limits.max_image_pixels)
    except PixelBomb as bomb:
        raise _too_many_pixels(member.name, bomb.size, limits) from None
    return header


def load_image_zip(
    data: bytes | str | os.PathLike[str] | BinaryIO,
    *,
    image_size: int | None,
    test_fraction: float = 0.2,
    seed: int = 0,
    limits: UploadLimits | None = None,
    name: str = "upload",
) -> UploadResult:
    """A dataset from a zip of an image folder (bytes, a path or an open binary file).

    Layout: one sub-folder of images per class, optionally inside one top-level folder, or
    ``train/<class>/`` and ``test/<class>/`` (``val/`` also counts as the test split). Without
    split folders, a seeded stratified split puts ``test_fraction`` of each class in the test set.
    Images of different sizes are resized (stretched) to ``image_size`` x ``image_size``; with
    ``image_size=None`` they must all have the same size. All-greyscale images give one channel,
    anything else RGB. Raises :class:`InputError` (one sentence) for anything unsafe or unusable.
    """
    limits = limits or UploadLimits()
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"The test fraction must be between 0 and 1, not {test_fraction}.")
    if image_size is not None:
        stored_size([], image_size, [])  # a bad or too large size is refused before anything is read

    handle = _open_upload(data, limits.max_upload_bytes)
    try:
        return _load_zip(handle, image_size=image_size, test_fraction=test_fraction, seed=seed, limits=limits,
                         name=name)
    except MemoryError:
        raise InputError("The images do not fit in the memory this server has left; upload fewer or smaller "
                         "images, or pick a smaller image size.") from None
    finally:
        if handle is not data:
            handle.close()


def _load_zip(handle: BinaryIO, *, image_size: int | None, test_fraction: float, seed: int, limits: UploadLimits,
              name: str) -> UploadResult:
    _precheck_directory(handle, limits)
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise InputError("The upload is not a valid zip file.") from exc

    warnings: list[str] = []
    skipped: list[str] = []
    with archive:
        infos = archive.infolist()
        _screen(infos, limits)
        members, classes, presplit = _layout(infos, warnings)
        budget = _Budget(limits.max_total_bytes)

        # Pass 1: headers only (size and mode), from each file's first bytes; nothing is decoded yet.
        readable: list[tuple[_Member, Header]] = []
        for member in members:
            header = _header(budget, archive, member, limits)
            if header is None:
                skipped.append(member.name)
            else:
                readable.append((member, header))
        if not readable:
            raise InputError(f"No image in the zip could be read ({_listing(skipped)}); use PNG, JPEG, BMP, GIF, WebP, TIFF or PPM files.")
        total_pixels = sum(h.width * h.height for _, h in readable)
        if total_pixels > limits.max_total_pixels:
            raise InputError(
                f"The images hold {total_pixels:,} pixels in all, more than the {limits.max_total_pixels:,} allowed; "
                "upload fewer or smaller images."
            )
        width, height, notes = stored_size([h for _, h in readable], image_size, [_shown(m.name, 60) for m, _ in readable])
        warnings.extend(notes)
        grey = all(h.grey for _, h in readable)
        channels, mode = (1, "L") if grey else (3, "RGB")
        needed = len(readable) * channels * width * height
        if needed > limits.max_dataset_bytes:
            raise InputError(
                f"The dataset would take {size_text(needed)} in memory, more than the {size_text(limits.max_dataset_bytes)} allowed; "
                "pick a smaller image size or upload fewer images."
            )
        check_dataset_memory(len(readable), channels, width, height, "decoding the uploaded images")

        # Pass 2: decode into one preallocated uint8 array, one image at a time (read again: the
        # bytes are not kept), shrunk to the stored size while decoding.
        budget = _Budget(limits.max_total_bytes)
        x = np.empty((len(readable), channels, height, width), dtype=np.uint8)
        y = np.empty(len(readable), dtype=np.int64)
        is_train = np.empty(len(readable), dtype=bool)
        ok = np.zeros(len(readable), dtype=bool)
        resized = 0
        for i, (member, header) in enumerate(readable):
            pixels = decode(budget.read(archive, member.info), mode, (width, height))
            if pixels is None:
                skipped.append(member.name)  # a header that reads but a body that does not
                continue
            resized += (header.width, header.height) != (width, height)
            x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
            y[i] = classes.index(member.class_name)
            is_train[i], ok[i] = member.is_train, True

    if skipped:
        warnings.append(f"Skipped {len(skipped)} unreadable image(s): {_listing(skipped)}.")
    if resized and image_size is not None:
        warnings.append(f"Resized {resized} image(s) to {width}x{height} (aspect ratios not kept).")
    if not ok.all():
        x, y, is_train = x[ok], y[ok], is_train[ok]
    present = sorted(set(y[is_train].tolist()))
    if len(present) < 2:
        found = [classes[i] for i in present]
        raise InputError(
            f"A dataset needs at least two classes (one folder of images per class), but the zip has "
            f"{len(found)}{' (' + _shown(found[0], 60) + ')' if found else ''}."
        )
    if len(present) < len(classes):
        empty = [c for i, c in enumerate(classes) if i not in present]
        warnings.append(f"Dropped class folder(s) with no readable training image: {_listing(empty)}.")
        remap = {old: new for new, old in enumerate(present)}
        keep = np.isin(y, present)
        x, y, is_train = x[keep], np.array([remap[int(v)] for v in y[keep]], dtype=np.int64), is_train[keep]
        classes = [classes[i] for i in present]
    if presplit:
        train_idx, test_idx = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    else:
        train_idx, test_idx = stratified_split(y, test_fraction, seed)
    if len(test_idx) == 0:
        raise InputError("The zip needs enough images for both training and testing; add at least two images per class.")
    alone = [c for i, c in enumerate(classes) if not np.any(y[test_idx] == i)]
    if alone:
        warnings.append(f"No test images for class(es) {_listing(alone)}; add more images to measure them.")
    dataset = make_dataset(name, x[train_idx], y[train_idx], x[test_idx], y[test_idx], list(classes))
    return UploadResult(dataset, skipped, warnings)


# ---------------------------------------------------------------------------------------------
# Keeping uploads out of memory


def spool(source: BinaryIO, folder: str | os.PathLike[str], name: str = "upload.zip",
          max_bytes: int | None = None) -> Path:
    """Copy an open upload to a file in ``folder`` in 1 MB chunks (never more in memory at once)."""
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = max_bytes if max_bytes is not None else UploadLimits().max_upload_bytes
    written = 0
    source.seek(0)
    with open(target, "wb") as out:
        while chunk := source.read(_READ_CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                target.unlink(missing_ok=True)
                raise InputError(f"The upload is larger than the {size_text(limit)} limit.")
            out.write(chunk)
    return target


def spill_to_disk(dataset: ImageDataset, folder: str | os.PathLike[str]) -> ImageDataset:
    """The same dataset with its images in memory-mapped files under ``folder``: a session keeps
    its upload on disk, and only the pages a computation touches are read in (and can be dropped
    by the operating system again)."""
    import torch

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split in ("train_x", "test_x"):
        path = root / f"{split}.npy"
        np.save(path, getattr(dataset, split).numpy())
        arrays[split] = torch.from_numpy(np.load(path, mmap_mode="c"))  # copy-on-write: never written back
    spilled = ImageDataset(
        name=dataset.name, train_x=arrays["train_x"], train_y=dataset.train_y, test_x=arrays["test_x"],
        test_y=dataset.test_y, classes=list(dataset.classes), mean=dataset.mean, std=dataset.std,
        subclass_train_y=dataset.subclass_train_y, subclass_test_y=dataset.subclass_test_y,
        subclass_names=dataset.subclass_names,
    )
    spilled._fingerprint = dataset.fingerprint()
    return spilled


# ---------------------------------------------------------------------------------------------
# Local data directories


def allowed_data_roots() -> list[Path]:
    """``$UNLEARNING_LAB_DATA_ROOTS`` (colon-separated), or just the default data directory."""
    return list(settings().data_roots)


def check_local_data_dir(path: str | os.PathLike[str], allowed_roots: list[str] | None = None) -> Path:
    """The resolved ``path`` if it lies under one of the allowed roots (symlinks resolved first).

    ``allowed_roots`` defaults to :func:`allowed_data_roots`. The directory need not exist yet
    (a download may create it). Raises :class:`InputError` (one sentence) otherwise.
    """
    text = os.fspath(path) if not isinstance(path, str) else path
    if not text or not text.strip() or "\x00" in text:
        raise InputError("The data directory must be a folder path.")
    if len(text) > 4096:
        raise InputError("The data directory's path is longer than 4,096 characters.")
    roots = [Path(r).expanduser() for r in allowed_roots] if allowed_roots is not None else allowed_data_roots()
    try:
        resolved = Path(text).expanduser().resolve(strict=False)
        resolved_roots = [r.resolve(strict=False) for r in roots]
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, bad names
        raise InputError(f"The data directory '{_shown(text)}' cannot be resolved.") from exc
    if not any(resolved == root or resolved.is_relative_to(root) for root in resolved_roots):
        shown = ", ".join(str(r) for r in resolved_roots) or "none"
        raise InputError(
            f"Reading data from '{_shown(text)}' is not allowed on this server; use a folder under: {shown}."
        )
    try:
        is_file = resolved.exists() and not resolved.is_dir()
    except (OSError, ValueError) as exc:  # a name too long for the file system, and the like
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise InputError(f"The data directory '{_shown(text)}' cannot be used ({_shown(reason, 60)}).") from None
    if is_file:
        raise InputError(f"The data directory '{_shown(text)}' is a file, not a folder.")
    return resolved
