"""Safe loading and saving of user checkpoints.

Files from users are untrusted: only safetensors, or a plain state dict through
``torch.load(weights_only=True)`` (which refuses to run pickled code). Names, shapes and dtypes
are checked against the chosen architecture, non-finite values are refused, and the size is
capped. Every failure is an :class:`InputError` with one clear sentence.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputError

DEFAULT_MAX_BYTES = int(os.environ.get("UNLEARNING_LAB_MAX_CHECKPOINT_MB", "200")) * 1024 * 1024
SAFETENSORS_MAGIC_MAX_HEADER = 100 * 1024 * 1024


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

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ModelConfig":
        try:
            return cls(
                model=str(raw["model"]),
                num_classes=int(raw["num_classes"]),
                input_shape=tuple(int(v) for v in raw["input_shape"]),  # type: ignore[arg-type]
                mean=tuple(float(v) for v in raw.get("mean", (0.0,))),
                std=tuple(float(v) for v in raw.get("std", (1.0,))),
                dataset=raw.get("dataset"),
                classes=raw.get("classes"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("The model config JSON is missing 'model', 'num_classes' or 'input_shape'.") from exc


def _read_bytes(source: str | Path | bytes, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "upload"
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"Checkpoint file '{path}' does not exist.")
        if path.stat().st_size > max_bytes:
            raise InputError(f"The checkpoint is larger than the {max_bytes // (1024 * 1024)} MB limit.")
        data, name = path.read_bytes(), path.name
    if len(data) == 0:
        raise InputError("The checkpoint file is empty.")
    if len(data) > max_bytes:
        raise InputError(f"The checkpoint is larger than the {max_bytes // (1024 * 1024)} MB limit.")
    return data, name


def _looks_like_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    header_len = int.from_bytes(data[:8], "little")
    return 2 <= header_len <= min(SAFETENSORS_MAGIC_MAX_HEADER, len(data) - 8) and data[8:9] == b"{"


def read_state_dict(source: str | Path | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from a safetensors file or a weights-only torch file, nothing else."""
    data, name = _read_bytes(source, max_bytes)
    if _looks_like_safetensors(data):
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(data)
        except Exception as exc:
            raise InputError("The safetensors file is corrupt and cannot be read.") from exc
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InputError(
            "The file is neither safetensors nor a PyTorch state dict; save one with save_file or torch.save(model.state_dict())."
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        raise InputError("TorchScript files are not accepted; save the model's state_dict instead.")
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            "The file is not a plain state dict (it may be a pickled model or contain code); save model.state_dict() instead."
        ) from exc
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
        raise InputError("The file does not hold a state dict of named tensors; save model.state_dict() instead.")
    return loaded


def load_model(
    source: str | Path | bytes,
    config: ModelConfig,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> nn.Module:
    """Build ``config``'s architecture and load the checkpoint into it, strictly and safely."""
    from .models import build_model

    state = read_state_dict(source, max_bytes)
    model = build_model(config.model, config.num_classes, config.input_shape, config.mean, config.std)
    expected = model.state_dict()
    # Accept checkpoints of the bare network (without our Normalize wrapper) as well.
    if not any(k.startswith("net.") for k in state) and any(k.startswith("net.") for k in expected):
        state = {f"net.{k}": v for k, v in state.items()}
        for key in ("normalize.mean", "normalize.std"):
            state[key] = expected[key]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        which = f"missing '{missing[0]}'" if missing else f"unexpected '{unexpected[0]}'"
        raise InputError(
            f"The checkpoint does not match {config.model} with {config.num_classes} classes ({which}); pick the architecture it was trained with."
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise InputError(
                f"The checkpoint does not match {config.model} with {config.num_classes} classes: "
                f"'{key}' has shape {list(tensor.shape)}, expected {list(expected[key].shape)}."
            )
        if tensor.is_floating_point() != expected[key].is_floating_point():
            raise InputError(f"'{key}' has dtype {tensor.dtype}, expected {expected[key].dtype}.")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(f"The checkpoint has non-finite values (NaN or inf) in '{key}'.")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return model.eval()


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
    return ModelConfig(
        model=model_name,
        num_classes=dataset.num_classes,
        input_shape=dataset.input_shape,
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        dataset=dataset.name,
        classes=list(dataset.classes),
    )
