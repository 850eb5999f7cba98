"""Reading a weights-only ``torch.save`` zip without trusting it: the archive's entries and the pickle's
opcodes are checked (only a flat {name: tensor} of plain storages may be rebuilt), and sizes are bounded
before anything is unpickled."""

from __future__ import annotations

import collections
import io
import pickletools
import re
import zipfile
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..memory import size_text

MAX_TENSORS = 100_000
STATE_DICT_HINT = "save model.state_dict() with torch.save, or as safetensors"


# What torch.save writes for a state dict, relative to the archive's one top-level folder.
_TORCH_ENTRY = re.compile(r"(data\.pkl|byteorder|version|\.format_version|\.storage_alignment|data/\d+|\.data/[A-Za-z0-9_.]+)")
_STORAGE_TYPES = frozenset(
    f"{kind}Storage"
    for kind in (
        "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
        "UInt16", "UInt32", "UInt64", "ComplexFloat", "ComplexDouble",
        "Float8_e4m3fn", "Float8_e5m2", "Float8_e4m3fnuz", "Float8_e5m2fnuz",
    )
)  # fmt: skip
_DTYPE_NAMES = frozenset(name for name, value in vars(torch).items() if isinstance(value, torch.dtype))
_ALLOWED_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor_v3"),  # tensors of newer dtypes (refused below by dtype, by name)
        ("torch.storage", "UntypedStorage"),  # what _rebuild_tensor_v3 rebuilds from
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "Size"),
        ("torch", "device"),
    }
    | {("torch", name) for name in _STORAGE_TYPES | _DTYPE_NAMES}
)
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"})
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _not_plain_state_dict(what: str) -> InputError:
    return InputError(
        f"The file contains {what}, not just tensors, and is refused because unpickling objects can run code; {STATE_DICT_HINT}."
    )


def _refuse_global(module: str, attr: str) -> InputError:
    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # protocol-2 spellings
    return _not_plain_state_dict(f"a pickled Python object ('{module:.60}.{attr:.60}')")


def _scan_pickle(payload: bytes) -> None:
    """Refuse a pickle that names any global outside a state dict's needs, without unpickling it.

    ``pickletools.genops`` only parses opcodes. Names pushed for STACK_GLOBAL are followed through
    the memo; a name that cannot be resolved statically is refused too.
    """
    memo: dict[Any, Any] = {}
    recent: list[Any] = []  # values pushed by the latest opcodes (None: not a known string)
    try:
        for opcode, arg, _ in pickletools.genops(payload):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                if (module, attr) not in _ALLOWED_GLOBALS:
                    raise _refuse_global(module, attr)
                recent.append(None)
            elif name == "STACK_GLOBAL":
                if len(recent) < 2 or not isinstance(recent[-2], str) or not isinstance(recent[-1], str):
                    raise _not_plain_state_dict("a pickled Python object")
                module, attr = recent[-2], recent[-1]
                if (module, attr) not in _ALLOWED_GLOBALS:
                    raise _refuse_global(module, attr)
                recent[-2:] = [None]
            elif name in ("EXT1", "EXT2", "EXT4"):
                raise _not_plain_state_dict("a pickled Python object (copyreg extension)")
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else arg.decode("latin-1") if isinstance(arg, bytes) else None)
            elif name in _GET_OPS:
                recent.append(memo.get(arg))
            elif name in _PUT_OPS:
                memo[arg] = recent[-1] if recent else None
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name not in ("FRAME", "PROTO"):  # framing opcodes do not touch the stack
                recent.append(None)
            if len(recent) > 64:
                del recent[:-8]
    except InputError:
        raise
    except Exception as exc:  # ValueError from genops on a broken stream, etc.
        raise InputError("The PyTorch file is corrupt: its pickle data cannot be parsed.") from exc


def _check_torch_zip(data: bytes, max_bytes: int) -> None:
    """Refuse anything in a zip archive that is not exactly what torch.save writes for tensors."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(names) > MAX_TENSORS + 16:
                raise InputError(f"The PyTorch file has {len(names)} entries, more than the {MAX_TENSORS} allowed.")
            if sum(info.file_size for info in infos) > max_bytes:
                raise InputError(f"The PyTorch file unpacks to more than the {size_text(max_bytes)} limit.")
            if len(set(names)) != len(names):
                raise InputError("The PyTorch file is malformed: it has duplicate entries.")
            prefixes = {name.split("/", 1)[0] for name in names}
            relative = [name.split("/", 1)[1] if "/" in name else "" for name in names]
            if any(r == "constants.pkl" or r.startswith(("code/", "extra/")) or r.endswith(".debug_pkl") for r in relative):
                raise InputError("TorchScript files are not accepted (they contain code); save the model's state_dict() instead.")
            if len(prefixes) != 1 or "data.pkl" not in relative:
                raise InputError(f"The zip archive is not a torch.save file; {STATE_DICT_HINT}.")
            odd = [name for name, r in zip(names, relative) if not _TORCH_ENTRY.fullmatch(r)]
            if odd:
                raise InputError(f"The PyTorch file has an unexpected entry '{odd[0]:.80}'; {STATE_DICT_HINT}.")
            pickle_bytes = archive.read(f"{prefixes.pop()}/data.pkl")
    except InputError:
        raise
    except Exception as exc:  # BadZipFile, CRC errors, truncated data, unsupported compression
        raise InputError("The PyTorch file is truncated or corrupt (not a readable zip archive).") from exc

    # torch reads the archive with its own (C++) zip reader: make sure it sees the same entries
    # and the same pickle, so nothing can hide from the checks above.
    reader_cls = getattr(torch._C, "PyTorchFileReader", None)
    if reader_cls is not None:
        try:
            reader = reader_cls(io.BytesIO(data))
            torch_names = sorted(reader.get_all_records())
            torch_pickle = reader.get_record("data.pkl")
        except Exception as exc:
            raise InputError("The PyTorch file is truncated or corrupt (PyTorch cannot read it).") from exc
        if torch_names != sorted(relative) or bytes(torch_pickle) != pickle_bytes:
            raise InputError("The PyTorch file is malformed: its zip directory is inconsistent.")
    _scan_pickle(pickle_bytes)


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "net", "weights")


def _plain_mapping(value: object) -> bool:
    """A dict or OrderedDict exactly (no subclass), with no attributes but a state dict's ``_metadata``:
    a pickle's BUILD step can set attributes that shadow methods such as ``items``."""
    if type(value) not in (dict, collections.OrderedDict):
        return False
    attrs = getattr(value, "__dict__", None) or {}
    return set(attrs) <= {"_metadata"}


def plain_tensor(value: object) -> bool:
    """A tensor or Parameter exactly, with no attributes set on it (that could shadow its methods)."""
    return type(value) in (torch.Tensor, nn.Parameter) and not (getattr(value, "__dict__", None) or {})


def _tensor_items(mapping: object) -> list[tuple[object, object]] | None:
    """The (key, value) pairs of a plain mapping read with dict's own method, or None."""
    if not _plain_mapping(mapping):
        return None
    return list(dict.items(mapping))  # type: ignore[arg-type]


def read_torch_zip(data: bytes, max_bytes: int) -> dict[str, torch.Tensor]:
    _check_torch_zip(data, max_bytes)
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True, mmap=False)
    except Exception as exc:
        raise InputError(f"The file is not a plain state dict and cannot be loaded safely; {STATE_DICT_HINT}.") from exc
    items = _tensor_items(loaded)
    if items is None:
        raise InputError(f"The file does not hold a plain state dict of named tensors (it holds an object of type "
                         f"{type(loaded).__name__:.40}, or one with extra attributes); {STATE_DICT_HINT}.")
    if items and not all(plain_tensor(v) for _, v in items):
        # A training checkpoint: {"state_dict": {...}, "epoch": 3, ...}. Look one level down only.
        by_key = {k: v for k, v in items if isinstance(k, str)}
        for key in _WRAPPER_KEYS:
            inner = _tensor_items(by_key.get(key))
            if inner and all(plain_tensor(v) for _, v in inner):
                return dict(inner)  # type: ignore[arg-type]
        keys = ", ".join(repr(k)[:40] for k, _ in items[:5])
        raise InputError(f"The file holds a dict without a state dict of tensors (keys: {keys}); {STATE_DICT_HINT}.")
    return dict(items)  # type: ignore[arg-type]


