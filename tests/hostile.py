"""Hostile inputs: the files, links and arguments an attacker (or a careless student) sends.

Every builder returns bytes or strings; nothing here is loaded. The attack suite
(tests/test_attacks.py) feeds them through the library, the CLI and the page.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import torch

# ---------------------------------------------------------------------------------------------
# Images and zips


def png(color=(255, 0, 0), size=(8, 8), mode: str = "RGB") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if mode != "RGB" and not isinstance(color, int):
        color = color[0]
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def solid_images_zip(count: int, side: int = 1448) -> bytes:
    """``count`` solid-colour PNGs of side x side pixels in two classes: a few KB that decode to
    count x side^2 x 3 bytes (40 of 1448 px: 10 KB -> 250 MB; 340: 90 KB -> 2.1 GB)."""
    red, blue = png((200, 0, 0), (side, side)), png((0, 0, 200), (side, side))
    return zip_of({f"big/{'red' if i % 2 else 'blue'}/{i}.png": red if i % 2 else blue for i in range(count)})


def zero_files_zip(count: int = 400, size: int = 1024 * 1024) -> bytes:
    """``count`` zero-filled files of ``size`` bytes named as images: each compresses 1000 times."""
    zeros = bytes(size)
    return zip_of({f"z/{'a' if i % 2 else 'b'}/{i}.png": zeros for i in range(count)})


def rectangles_zip() -> bytes:
    """Only non-square images (the models need square ones)."""
    return zip_of({f"rect/{c}/{i}.png": png(col, (40, 20)) for c, col in (("a", (250, 0, 0)), ("b", (0, 0, 250)))
                   for i in range(4)})


# Class folder names that are Markdown or HTML (no '/' or '\': those would be folders).
MARKDOWN_NAMES = ("[Log in again](http:evil.example)", "![t](http:evil.example)", "<img src=x onerror=alert(1)>",
                  "**bold** $x^2$ www.evil.example")


def markdown_names_zip() -> bytes:
    colours = ((250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0))
    return zip_of({f"{name}/{i}.png": png(colour) for name, colour in zip(MARKDOWN_NAMES, colours) for i in range(4)})


# A TIFF whose strip offsets tag was turned into a float: Pillow reads its header, then raises
# TypeError (not OSError) while decoding it. Found by mutating a valid 8x8 TIFF (seed 9019).
FUZZED_TIFF = bytes.fromhex(
    "49492a00080000000a0000010400010000000800000001010400010000000800000002010300030000008600000003010300"
    "010000000100000006010300010000000200000011010b00010000008c0000001501030001000000030000001601040001000000"
    "080000001701040001000000c00000001c010300010000000100000000000000080008000800"
    + "c81e1e" * 57 + "f61e1e" + "c81e1e" * 6
)


def fuzzed_tiff_zip() -> bytes:
    entries = {f"t/{c}/{i}.png": png(col) for c, col in (("a", (250, 0, 0)), ("b", (0, 0, 250))) for i in range(4)}
    entries["t/a/fuzzed.tiff"] = FUZZED_TIFF
    return zip_of(entries)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _patched_torch_zip(obj, swaps: list[tuple[bytes, bytes]]) -> bytes:
    """torch.save(obj), with byte strings of its pickle swapped for others of the same length."""
    source = zipfile.ZipFile(io.BytesIO(torch_bytes(obj)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data.pkl"):
                for old, new in swaps:
                    data = data.replace(old, new)
            target.writestr(info, data)
    return out.getvalue()


def float8_safetensors() -> bytes:
    from safetensors.torch import save

    return save({"weight": torch.zeros(4, dtype=torch.float8_e4m3fn)})


def float8_pt() -> bytes:
    return torch_bytes({"weight": torch.zeros(4, dtype=torch.float8_e4m3fn)})


def shadowed_ordered_dict_pt() -> bytes:
    """An OrderedDict whose pickled state sets its ``values`` and ``items`` to torch.device: it passes
    the opcode allow-list and weights_only, then calling ``.items()`` fails."""
    state = collections.OrderedDict(weight=torch.zeros(2))
    state.xxxxxx = torch.device("cpu")  # type: ignore[attr-defined]
    state.yyyyy = torch.device("cpu")  # type: ignore[attr-defined]
    return _patched_torch_zip(state, [(b"xxxxxx", b"values"), (b"yyyyy", b"items")])


def shadowed_parameter_pt() -> bytes:
    """A Parameter rebuilt with a state that sets its ``detach`` to torch.device."""
    parameter = torch.nn.Parameter(torch.zeros(2))
    parameter.xxxxxx = torch.device("cpu")  # type: ignore[attr-defined]
    return _patched_torch_zip({"weight": parameter}, [(b"xxxxxx", b"detach")])


def huge_num_classes_config() -> bytes:
    return b'{"model": "smallcnn", "num_classes": 1' + b"0" * 400 + b', "input_shape": [1, 8, 8]}'


class _Call:
    """Pickles as ``function(*args)``: unpickling it calls the function."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def pickle_payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that create ``marker`` when unpickled, by several routes and in every protocol, raw
    and inside a torch.save archive (named 'route/protocol/container')."""
    import builtins
    import os
    import subprocess

    code = f"open({str(marker)!r}, 'w').close()"
    routes = {
        "exec": _Call(builtins.exec, code),
        "eval": _Call(builtins.eval, f"__import__('builtins').exec({code!r})"),
        "os.system": _Call(os.system, f"touch {marker}"),
        "subprocess": _Call(subprocess.call, ["touch", str(marker)]),
        "open-for-writing": _Call(builtins.open, str(marker), "w"),
        "nested": {"weight": torch.zeros(1), "extra": [_Call(builtins.exec, code)]},
    }
    out = {}
    for route, obj in routes.items():
        for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
            raw = pickle.dumps(obj, protocol=protocol)
            out[f"{route}/{protocol}/raw"] = raw
            out[f"{route}/{protocol}/torch-zip"] = _swap_pickle(torch_bytes({"weight": torch.zeros(1)}), raw)
    return out


def _swap_pickle(torch_zip: bytes, payload: bytes) -> bytes:
    """A torch.save archive whose data.pkl is ``payload``."""
    source = zipfile.ZipFile(io.BytesIO(torch_zip))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            target.writestr(info, payload if info.filename.endswith("data.pkl") else source.read(info))
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Links and arguments

LINK_PAYLOADS = {
    "page": "[Log in again](https://evil.example)",
    "dataset": "![t](https://evil.example/p.png)",
    "model": '<img src="https://evil.example/x.png">',
    "forget": "class:[x](https://evil.example)",
    "method": "<a href='https://evil.example'>ssd</a>",
    "alpha": "https://evil.example",
    "lambda": "www.evil.example",
    "seed": "³",
    "estimator": "$\\href{https://evil.example}{x}$",
    "view": "javascript:alert(1)",
}
BAD_NUMBERS = {"seed": "³", "forget": "class:³"}
RANDOM_BAD_NUMBER = {"forget": "random:³"}

CLI_ATTACKS = {
    "class ³": ["--forget-class", "³"],
    "alpha=abc": ["--forget-class", "3", "--param", "alpha=abc"],
    "save-model": ["--forget-class", "3", "--save-model", "/nonexistent/x"],
    "huge range": ["--forget-indices", "0-999999999"],
    "seed ³": ["--forget-class", "3", "--seed", "³"],
    "data dir of 300 characters": ["--dataset", "imagefolder", "--data-dir", "/tmp/" + "a" * 300, "--forget-class", "1"],
    "100,000 workers": ["--forget-class", "3", "--stream-dir", "/tmp", "--workers", "100000"],
    "batch of 10**8": ["--forget-class", "3", "--stream-dir", "/tmp", "--batch-size", "100000000"],
}
LINK_ATTACKS = {  # one hostile value per link: each gets one sentence and the page its default
    "alpha in Arabic-Indic digits": {"alpha": "٢٠"},
    "alpha with an underscore": {"alpha": "1_0"},
    "a billion indices": {"forget": "indices:0-999999999"},
}
CHECKPOINT_ATTACKS = {  # (weights, config JSON or None) that used to raise through the page and the CLI
    "float8 safetensors": (float8_safetensors, None),
    "float8 torch.save": (float8_pt, None),
    "OrderedDict with shadowed items": (shadowed_ordered_dict_pt, None),
    "Parameter with shadowed detach": (shadowed_parameter_pt, None),
    "num_classes of 10**400": (None, huge_num_classes_config),
}


def safetensors_header_only(header: dict) -> bytes:
    import json

    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text
