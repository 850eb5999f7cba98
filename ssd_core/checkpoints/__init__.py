"""Safe loading and saving of user checkpoints.

Files from users are untrusted. Only two formats are accepted:

- **safetensors** (preferred): the JSON header is parsed and checked here (size, dtypes, shapes,
  offsets) before the ``safetensors`` library reads any tensor;
- a plain **state dict saved with torch.save** (the zip format of PyTorch >= 1.6). Before
  ``torch.load(weights_only=True)`` sees the file, the archive is checked entry by entry (only
  what torch.save writes for tensors; no TorchScript code, no duplicate or extra entries, the same
  view of the archive as torch's own reader), and the pickle inside is scanned opcode by opcode:
  it may only name the few globals a state dict needs (tensor rebuild functions, storage types,
  OrderedDict). So a pickled module, a ``__reduce__`` payload or anything else that could run code
  is refused *before* anything is unpickled; ``weights_only=True`` is a second, independent wall.

Everything else (raw pickles, the legacy non-zip torch.save format, TorchScript, text, empty or
truncated files) is refused. Names, shapes and dtypes are checked against the chosen architecture,
non-finite values are refused, the model is loaded with ``strict=True``, and sizes are capped
(``UNLEARNING_LAB_MAX_CHECKPOINT_MB``, default 200). Every failure is an :class:`InputError`
with one clear sentence.
"""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import torch
from torch import nn

from ..errors import InputError
from ..memory import size_text
from .torch_zip import MAX_TENSORS, STATE_DICT_HINT, plain_tensor, read_torch_zip

if TYPE_CHECKING:
    from ..models import Classifier

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_MAX_MB = 200
MAX_CONFIG_BYTES = 1 * MB  # a model config JSON is a few hundred bytes
MAX_CLASSES = 10_000  # a config asking for more would only be a way to allocate a huge head
MAX_IMAGE_SIDE = 1024
MAX_CHANNELS = 16
SAFETENSORS_MAX_HEADER = 16 * MB  # ~100 bytes per tensor: room for >100k tensors
SAFETENSORS_MAGIC_MAX_HEADER = SAFETENSORS_MAX_HEADER  # old name


def max_checkpoint_bytes() -> int:
    """The size cap for checkpoints: ``$UNLEARNING_LAB_MAX_CHECKPOINT_MB`` (default 200 MB)."""
    from ..settings import settings

    return int(settings().max_checkpoint_mb * MB)


DEFAULT_MAX_BYTES = max_checkpoint_bytes()  # at import time; the functions read the env at call time


# ---------------------------------------------------------------------------------------------
# Model config


def _short_number(value: Any) -> str:
    """A number as text that stays short however large it is (a config may say 10**400)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 60:
        return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"The model config's {what} must be a whole number, not {_short_number(value)}.")
    if isinstance(value, float) and not value.is_integer():
        raise InputError(f"The model config's {what} must be a whole number, not {_short_number(value)}.")
    return int(value)


def _as_floats(value: Any, what: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_CHANNELS:
        raise InputError(f"The model config's {what} must be a list of 1 to {MAX_CHANNELS} numbers.")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"The model config's {what} must hold finite numbers, not {v!r:.40}.")
        out.append(float(v))
    return tuple(out)


@dataclass
class ModelConfig:
    """What is needed to rebuild a model: architecture, classes and input shape (+ normalisation)."""

    model: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str | None = None
    classes: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "dataset": self.dataset,
            "classes": self.classes,
        }

    def validate(self) -> ModelConfig:
        """Check the values (a config may come from an uploaded JSON); returns self."""
        from ..models import get_spec

        if not isinstance(self.model, str) or not self.model:
            raise InputError("The model config's 'model' must be an architecture name.")
        get_spec(self.model)  # InputError naming the known models
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise InputError(f"The model config's num_classes must be between 2 and {MAX_CLASSES}, "
                             f"not {_short_number(self.num_classes)}.")
        if len(self.input_shape) != 3:
            raise InputError("The model config's input_shape must be [channels, height, width].")
        c, h, w = self.input_shape
        if not 1 <= c <= MAX_CHANNELS or not 1 <= h <= MAX_IMAGE_SIDE or not 1 <= w <= MAX_IMAGE_SIDE:
            raise InputError(
                f"The model config's input_shape [{', '.join(_short_number(v) for v in self.input_shape)}] is out of range "
                f"(1 to {MAX_CHANNELS} channels, sides of 1 to {MAX_IMAGE_SIDE} pixels)."
            )
        if len(self.mean) not in (1, c) or len(self.std) != len(self.mean):
            raise InputError(f"The model config's mean and std must each have 1 or {c} values (one per channel).")
        if any(s <= 0 for s in self.std):
            raise InputError("The model config's std values must be positive.")
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise InputError(
                f"The model config lists {len(self.classes)} class names but num_classes is {self.num_classes}."
            )
        return self

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelConfig:
        """A checked config from a dict (e.g. the JSON written by :func:`save_model`; extra keys are ignored)."""
        if not isinstance(raw, dict):
            raise InputError("The model config must be a JSON object with 'model', 'num_classes' and 'input_shape'.")
        if any(key not in raw for key in ("model", "num_classes", "input_shape")):
            raise InputError("The model config JSON is missing 'model', 'num_classes' or 'input_shape'.")
        shape = raw["input_shape"]
        if not isinstance(shape, (list, tuple)) or len(shape) != 3:
            raise InputError("The model config's input_shape must be [channels, height, width].")
        classes = raw.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
            raise InputError("The model config's classes must be a list of names.")
        dataset = raw.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise InputError("The model config's dataset must be a name.")
        config = cls(
            model=raw["model"] if isinstance(raw["model"], str) else "",
            num_classes=_as_int(raw["num_classes"], "num_classes"),
            input_shape=tuple(_as_int(v, "input_shape") for v in shape),  # type: ignore[arg-type]
            mean=_as_floats(raw.get("mean", [0.0]), "mean"),
            std=_as_floats(raw.get("std", [1.0]), "std"),
            dataset=dataset,
            classes=list(classes) if classes is not None else None,
        )
        return config.validate()


def read_model_config(source: str | Path | bytes | BinaryIO) -> ModelConfig:
    """A checked :class:`ModelConfig` from a JSON file, its bytes or an open file (at most 1 MB)."""
    data, _ = _read_bytes(source, MAX_CONFIG_BYTES, what="model config")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError("The model config is not valid JSON; use the .json file saved next to the weights.") from exc
    return ModelConfig.from_dict(raw)


# ---------------------------------------------------------------------------------------------
# Reading bytes


def _read_bytes(source: str | Path | bytes | BinaryIO, max_bytes: int, what: str = "checkpoint") -> tuple[bytes, str]:
    """The bytes of a path, a bytes object or an open binary file; never more than ``max_bytes``."""
    limit = f"The {what} is larger than the {size_text(max_bytes)} limit."
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "upload"
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        name = str(getattr(source, "name", "upload"))
        if not isinstance(data, (bytes, bytearray)):
            raise InputError(f"The {what} must be opened in binary mode.")
        data = bytes(data)
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():  # also refuses directories, devices and fifos (/dev/zero)
            raise InputError(f"The {what} file '{path}' does not exist.")
        if path.stat().st_size > max_bytes:
            raise InputError(limit)
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
        name = path.name
    else:
        raise InputError(f"The {what} must be a file path or its bytes.")
    if len(data) == 0:
        raise InputError(f"The {what} file is empty.")
    if len(data) > max_bytes:
        raise InputError(limit)
    return data, name


# ---------------------------------------------------------------------------------------------
# safetensors

_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip


# What a checkpoint may hold: floating point weights of these dtypes, integer buffers (BatchNorm's
# step counter). Anything else (float8, bool, unsigned 16-64 bit, complex) is refused by name
# before any arithmetic is done on it (isfinite is not even implemented for float8).
_FLOAT_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
_INT_DTYPES = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})
_SAFETENSORS_ALLOWED = frozenset({"F16", "BF16", "F32", "F64", "U8", "I8", "I16", "I32", "I64"})
_SAFETENSORS_NAMES = {"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "BOOL": "bool", "U16": "uint16",
                      "U32": "uint32", "U64": "uint64"}


def _unsupported_dtype(name: str, dtype: object) -> InputError:
    shown = str(dtype).replace("torch.", "")
    return InputError(f"The checkpoint's tensor '{name:.80}' has dtype {shown:.30}, which is not supported; "
                      "save the weights as float32 (or float16, bfloat16, float64).")


def _safetensors_error(detail: str) -> InputError:
    return InputError(f"The safetensors file is corrupt ({detail}) and cannot be read.")


def _check_safetensors_header(data: bytes) -> None:
    """Validate the header of a safetensors file before the library touches the tensors."""
    header_len = int.from_bytes(data[:8], "little")
    if header_len > SAFETENSORS_MAX_HEADER:
        raise InputError(
            f"The safetensors header is {size_text(header_len)}, more than the {size_text(SAFETENSORS_MAX_HEADER)} allowed."
        )
    if 8 + header_len > len(data):
        raise InputError("The safetensors file is truncated: it ends inside its header.")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _safetensors_error("its header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise _safetensors_error("its header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise _safetensors_error("bad __metadata__")
    if len(header) > MAX_TENSORS:
        raise InputError(f"The checkpoint has {len(header)} tensors, more than the {MAX_TENSORS} allowed.")
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise _safetensors_error(f"bad entry for '{name:.80}'")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _SAFETENSORS_ITEMSIZE:
            raise InputError(f"The safetensors tensor '{name:.80}' has unsupported dtype {str(dtype):.20}.")
        if dtype not in _SAFETENSORS_ALLOWED:
            raise _unsupported_dtype(name, _SAFETENSORS_NAMES.get(dtype, dtype))
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise _safetensors_error(f"bad shape or offsets for '{name:.80}'")
        if math.prod(shape) * _SAFETENSORS_ITEMSIZE[dtype] != offsets[1] - offsets[0]:
            raise _safetensors_error(f"the size of '{name:.80}' does not match its shape")
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise _safetensors_error("its tensors overlap or leave gaps")
        position = end
    available = len(data) - 8 - header_len
    if position > available:
        raise InputError(
            f"The safetensors file is truncated: its header promises {size_text(position)} of tensor data but only "
            f"{size_text(available)} follow."
        )
    if position < available:
        raise _safetensors_error("it has trailing bytes after the tensors")


def _read_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load as load_safetensors

    _check_safetensors_header(data)
    try:
        return load_safetensors(data)
    except Exception as exc:  # the library's own checks (a second wall)
        raise InputError("The safetensors file is corrupt and cannot be read.") from exc


# ---------------------------------------------------------------------------------------------
# Public: read a state dict

_PICKLE_PROTOCOL_2_PLUS = b"\x80"


def read_state_dict(
    source: str | Path | bytes | BinaryIO, max_bytes: int | None = None
) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from a safetensors file or a weights-only torch.save file, nothing else.

    ``max_bytes`` defaults to :func:`max_checkpoint_bytes`. Raises :class:`InputError` (one
    sentence) for anything else, before any of its content is unpickled.
    """
    max_bytes = max_checkpoint_bytes() if max_bytes is None else int(max_bytes)
    data, _ = _read_bytes(source, max_bytes)
    try:
        return _state_dict_from_bytes(data, max_bytes)
    except InputError:
        raise
    except MemoryError:
        raise InputError("The checkpoint is too large to read in the memory this server allows.") from None
    except Exception as exc:  # a reader error we did not foresee: still one sentence, no traceback
        log.warning("unexpected error reading a checkpoint", exc_info=exc)
        raise InputError(f"The checkpoint cannot be read ({type(exc).__name__}); {STATE_DICT_HINT}.") from None


def _state_dict_from_bytes(data: bytes, max_bytes: int) -> dict[str, torch.Tensor]:
    if data[:4] == b"PK\x03\x04":
        state = read_torch_zip(data, max_bytes)
    elif len(data) >= 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < 2**40:
        # Checked before the pickle sniff: a header length of 128 + 256k starts with 0x80 too.
        # Nothing here is ever unpickled, whatever the bytes are.
        state = _read_safetensors(data)
    elif data[:1] == _PICKLE_PROTOCOL_2_PLUS:
        raise InputError(
            "The file is a raw pickle (or the legacy pre-1.6 torch.save format), which can run code when loaded; "
            f"{STATE_DICT_HINT} using a recent PyTorch."
        )
    elif data.lstrip()[:1] == b"{":
        raise InputError("This is a JSON file, not model weights; upload the .safetensors (or .pt) file and give the JSON as the config.")
    elif data[:4] == b"PK\x05\x06" or zipfile.is_zipfile(io.BytesIO(data)):
        raise InputError("The PyTorch file is truncated or corrupt (not a readable zip archive).")
    else:
        raise InputError(
            f"The file is neither safetensors nor a PyTorch state dict (or it is truncated); {STATE_DICT_HINT}."
        )
    if not state:
        raise InputError("The checkpoint holds no tensors.")
    if len(state) > MAX_TENSORS:
        raise InputError(f"The checkpoint has {len(state)} tensors, more than the {MAX_TENSORS} allowed.")
    out: dict[str, torch.Tensor] = {}
    for key, value in dict.items(state):
        if not isinstance(key, str) or not plain_tensor(value):
            raise InputError(f"The file does not hold a state dict of named tensors; {STATE_DICT_HINT}.")
        tensor = torch.Tensor.detach(value)  # the base method: a tensor's own attributes are not trusted
        if tensor.layout != torch.strided or tensor.is_quantized or tensor.is_nested or tensor.device.type != "cpu":
            raise InputError(f"The checkpoint's '{key:.80}' is not a plain dense tensor; {STATE_DICT_HINT}.")
        if tensor.dtype not in _FLOAT_DTYPES and tensor.dtype not in _INT_DTYPES:
            raise _unsupported_dtype(key, tensor.dtype)
        out[key] = tensor
    return out


# ---------------------------------------------------------------------------------------------
# Public: load a model


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _align_keys(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Accept DataParallel/compiled prefixes and checkpoints of the bare network (no Normalize)."""
    for prefix in ("module.", "_orig_mod."):
        state = _strip_prefix(state, prefix)
    if not any(k.startswith("net.") for k in state) and any(k.startswith("net.") for k in expected):
        state = {f"net.{k}": v for k, v in state.items()}
        for key in ("normalize.mean", "normalize.std"):
            state.setdefault(key, expected[key])
    return state


def _describe(config: ModelConfig) -> str:
    c, h, w = config.input_shape
    return f"{config.model} ({config.num_classes} classes, {c}x{h}x{w} images)"


def _guess_architecture(state: dict[str, torch.Tensor], config: ModelConfig) -> str | None:
    """The registered architecture whose names and shapes (head aside) match the checkpoint; built on 'meta', so free."""
    from ..models import available_models, build_model

    for name in available_models():
        if name == config.model:
            continue
        try:
            with torch.device("meta"):
                model = build_model(name, config.num_classes, config.input_shape, config.mean, config.std)
            expected = model.state_dict()
            aligned = _align_keys(dict(state), expected)
            heads = _head_keys(expected, config.num_classes)
            if set(aligned) == set(expected) and all(
                aligned[k].shape == v.shape for k, v in expected.items() if k not in heads
            ):
                return name
        except Exception:  # noqa: BLE001 - an architecture that cannot take this input shape
            continue
    return None


def _head_keys(expected: dict[str, torch.Tensor], num_classes: int) -> set[str]:
    """The final layer's weight and bias (the last 2-D weight with num_classes rows)."""
    heads = [k for k, v in expected.items() if k.endswith("weight") and v.dim() == 2 and v.shape[0] == num_classes]
    if not heads:
        return set()
    weight = heads[-1]
    return {weight, weight[: -len("weight")] + "bias"}


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], config: ModelConfig) -> None:
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        guess = _guess_architecture(state, config)
        if guess is not None:
            raise InputError(
                f"The checkpoint does not match {config.model}: it looks like a {guess} checkpoint; pick the architecture it was "
                "trained with."
            )
        parts = []
        if missing:
            parts.append(f"it lacks '{missing[0]}'" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(
                f"it has unexpected '{unexpected[0]:.80}'" + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
            )
        raise InputError(
            f"The checkpoint does not match {_describe(config)}: {', and '.join(parts)}; pick the architecture it was trained with."
        )
    heads = _head_keys(expected, config.num_classes)
    for key, want in expected.items():
        tensor = state[key]
        if tuple(tensor.shape) != tuple(want.shape):
            if key in heads and tensor.dim() == want.dim() and tensor.dim() >= 1 and tensor.shape[1:] == want.shape[1:]:
                raise InputError(
                    f"The checkpoint was trained for {tensor.shape[0]} classes but {config.num_classes} were chosen "
                    f"('{key}' has shape {list(tensor.shape)}, expected {list(want.shape)}); pick the matching dataset or number of "
                    "classes."
                )
            raise InputError(
                f"The checkpoint does not match {_describe(config)}: '{key}' has shape {list(tensor.shape)}, "
                f"expected {list(want.shape)}."
            )
        ok_dtype = tensor.is_floating_point() if want.is_floating_point() else tensor.dtype in _INT_DTYPES
        if not ok_dtype:
            raise InputError(f"The checkpoint's '{key}' has dtype {tensor.dtype}, but {config.model} expects {want.dtype}.")
        if tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise InputError(f"The checkpoint has non-finite values (NaN or inf) in '{key}'.")
            if key.endswith("running_var") and bool((tensor < 0).any()):
                raise InputError(f"The checkpoint has negative variances in '{key}'; the file is corrupt.")
            if key == "normalize.std" and bool((tensor <= 0).any()):
                raise InputError("The checkpoint's normalisation std ('normalize.std') must be positive.")


def load_model(
    source: str | Path | bytes | BinaryIO,
    config: ModelConfig,
    max_bytes: int | None = None,
) -> Classifier:
    """Build ``config``'s architecture and load the checkpoint into it, strictly and safely.

    ``max_bytes`` defaults to :func:`max_checkpoint_bytes`. The model comes back in eval mode.
    """
    from ..models import build_model

    if not isinstance(config, ModelConfig):
        raise InputError("load_model needs a ModelConfig (see ModelConfig.from_dict / read_model_config).")
    config.validate()
    state = read_state_dict(source, max_bytes)
    model = build_model(config.model, config.num_classes, config.input_shape, config.mean, config.std)
    expected = model.state_dict()
    state = _align_keys(state, expected)
    _check_state(state, expected, config)
    try:
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:  # should not happen after the checks above
        raise InputError(f"The checkpoint does not fit {_describe(config)}; pick the architecture it was trained with.") from exc
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Saving


def save_model(model: nn.Module, config: ModelConfig, path_stem: str | Path, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` (the config, loadable by :func:`load_model`)."""
    from safetensors.torch import save_file

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights, meta = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(weights))
    meta.write_text(json.dumps({**config.to_dict(), **(extra or {})}, indent=2))
    return weights, meta


def model_bytes(model: nn.Module) -> bytes:
    """The model's state dict as safetensors bytes (for downloads)."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def config_for_dataset(model_name: str, dataset) -> ModelConfig:
    """The :class:`ModelConfig` of architecture ``model_name`` for ``dataset`` (classes, image shape, normalisation)."""
    return ModelConfig(
        model=model_name,
        num_classes=dataset.num_classes,
        input_shape=dataset.input_shape,
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        dataset=dataset.name,
        classes=list(dataset.classes),
    )
