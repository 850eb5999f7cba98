"""Decoding image files into a dataset: one set of rules for uploaded zips and image folders.

Images are untrusted: every decoder error of a file (whatever Pillow raises, a fuzzed TIFF raises
TypeError) skips that file and names it; nothing is held at full size longer than one image; the
side of the stored images is capped (``UNLEARNING_LAB_UPLOAD_MAX_SIDE``, default 128: no model
here trains usefully on more, and training cost grows with its square); and the whole dataset's
memory is checked against the budget (:mod:`ssd_core.memory`) before the array is allocated.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..memory import CHUNK_BYTES, check_memory, images_bytes

log = logging.getLogger(__name__)

# Pillow decoders allowed: plain raster formats only (no EPS/Ghostscript, no PSD, ...).
PIL_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
DEFAULT_MAX_SIDE = 128
HEADER_BYTES = 64 * 1024  # enough of a file for Pillow to read its size and mode


def max_image_side() -> int:
    """The largest side images are stored at: ``$UNLEARNING_LAB_UPLOAD_MAX_SIDE`` (default 128)."""
    from ..settings import settings

    return settings().upload_max_side


def _formats() -> list[str]:
    from PIL import Image

    Image.init()
    return [f for f in PIL_FORMATS if f in Image.OPEN]


def open_image(raw: bytes | str | os.PathLike[str]) -> Any:
    """A Pillow image (not yet decoded) restricted to the plain raster formats."""
    from PIL import Image

    source = io.BytesIO(raw) if isinstance(raw, (bytes, bytearray)) else raw
    return Image.open(source, formats=_formats())


@dataclass(frozen=True)
class Header:
    """What an image file says about itself before it is decoded."""

    width: int
    height: int
    grey: bool


class PixelBomb(Exception):
    """An image declares more pixels than allowed (``size`` when it could be read)."""

    def __init__(self, size: tuple[int, int] | None) -> None:
        super().__init__(size)
        self.size = size


def read_header(raw: bytes | str | os.PathLike[str], max_pixels: int) -> Header | None:
    """The size and colour of an image, or None when it is not a readable image. Raises
    :class:`PixelBomb` when it declares more than ``max_pixels`` (a decompression bomb)."""
    from PIL import Image

    try:
        with open_image(raw) as img:
            width, height, mode = int(img.size[0]), int(img.size[1]), img.mode
    except Image.DecompressionBombError:
        raise PixelBomb(None) from None
    except Exception:  # noqa: BLE001 - any decoder error: not a readable image
        return None
    if width < 1 or height < 1:
        return None
    if width * height > max_pixels:
        raise PixelBomb((width, height))
    return Header(width, height, mode in GREY_MODES)


def decode(raw: bytes | str | os.PathLike[str], mode: str, size: tuple[int, int]) -> np.ndarray | None:
    """The image as a uint8 (H, W) or (H, W, 3) array at ``size`` (w, h), or None when it cannot be
    decoded. JPEGs are decoded at a reduced scale where possible (``draft``); other formats are
    decoded, then shrunk: one image at a time is the most ever held at full size."""
    from PIL import Image

    try:
        with open_image(raw) as img:
            if img.size != size:
                img.draft(mode, size)
            img.load()
            converted = img.convert(mode)
            if converted.size != size:
                if converted.size[0] >= 2 * size[0] and converted.size[1] >= 2 * size[1]:
                    factor = min(converted.size[0] // size[0], converted.size[1] // size[1])
                    converted = converted.reduce(factor)  # fast box filter first for big images
                converted = converted.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
    except Exception:  # noqa: BLE001 - a header that reads but a body that does not
        return None


def stored_size(headers: list[Header], image_size: int | None, names: list[str],
                square: bool = True) -> tuple[int, int, list[str]]:
    """(width, height) to store every image at, and notes for the user.

    ``image_size`` given: that square (at most the side cap). None: the images' own size, which
    must be the same for all (and square when ``square``: uploads train the registry's models);
    a side above the cap is shrunk to it, keeping the aspect ratio."""
    cap = max_image_side()
    notes: list[str] = []
    if image_size is not None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise InputError(f"The image size must be a positive whole number of pixels, not {image_size!r:.20}.")
        if image_size > cap:
            raise InputError(f"The image size {image_size} is larger than the {cap} pixels this server trains on "
                             "(UNLEARNING_LAB_UPLOAD_MAX_SIDE); pick a smaller one.")
        return image_size, image_size, notes
    sizes = {(h.width, h.height) for h in headers}
    if len(sizes) > 1:
        first = headers[0]
        other = next(i for i, h in enumerate(headers) if (h.width, h.height) != (first.width, first.height))
        raise InputError(
            f"The images have different sizes ({names[0][:60]} is {first.width}x{first.height}, "
            f"{names[other][:60]} is {headers[other].width}x{headers[other].height}); pick an image size to resize to.")
    width, height = sizes.pop()
    if square and width != height:
        raise InputError(f"The images are {width}x{height} pixels, but the models here need square images; "
                         "pick an image size to resize them to.")
    if max(width, height) > cap:
        scale = cap / max(width, height)
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        notes.append(f"The images are {width}x{height}; they were shrunk to {new[0]}x{new[1]}, the largest size this "
                     "server trains on (UNLEARNING_LAB_UPLOAD_MAX_SIDE).")
        width, height = new
    return width, height, notes


def check_dataset_memory(count: int, channels: int, width: int, height: int, what: str) -> None:
    """The peak of building a dataset of ``count`` images: the array, its train/test copies and
    one conversion chunk for the mean and std."""
    needed = 2 * images_bytes(count, channels, height, width) + CHUNK_BYTES
    check_memory(needed, what, "pick a smaller image size or use fewer images")
