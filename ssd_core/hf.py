"""Hugging Face ``transformers`` image classifiers (e.g. ``ViTForImageClassification``) as lab models.

Optional: ``transformers`` is imported only when one is loaded (extra ``[hf]``). Weights load only
from safetensors (``model.safetensors`` in a folder written by ``save_pretrained``, or a hub id
where the network allows): a folder with only ``pytorch_model.bin`` (a pickle) is refused. The
wrapper takes float images in [0, 1] at the dataset's size, like every lab model, and keeps the
model's own preprocessing inside: grey images repeated to three channels, bilinear resizing to
the config's ``image_size``, normalisation with the folder's ``preprocessor_config.json``
``image_mean``/``image_std`` (0.5 when absent, the ViT default). It returns logits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError

HF_PREFIX = "hf:"


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise InputError("Hugging Face models need the transformers package: pip install 'ssd_core[hf]'.") from None
    return transformers


class HFImageClassifier(nn.Module):
    """A transformers image classifier behind the lab's model interface (images in [0, 1] -> logits)."""

    def __init__(self, model: nn.Module, image_size: int, channels: int, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.preprocessing = (tuple(mean), tuple(std))
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.model(pixel_values=(x - self.mean) / self.std).logits


def _preprocessing(folder: Path | None, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean, std = (0.5,) * channels, (0.5,) * channels
    if folder is not None and (folder / "preprocessor_config.json").is_file():
        try:
            processor = json.loads((folder / "preprocessor_config.json").read_text())
            mean = tuple(float(v) for v in processor.get("image_mean", mean))
            std = tuple(float(v) for v in processor.get("image_std", std))
        except (ValueError, TypeError, OSError):
            raise InputError("The folder's preprocessor_config.json is not valid JSON with image_mean/image_std.") from None
    return mean, std


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers on its port within ``timeout`` (so offline fails in seconds,
    not after the hub client's retries)."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_hf_classifier(source: str, num_classes: int | None = None) -> HFImageClassifier:
    """A pretrained image classifier from a ``save_pretrained`` folder or a hub id.

    Args:
        source: a local folder (config.json + model.safetensors) or a hub id (needs the network).
        num_classes: the dataset's classes; a different head size is refused with one sentence.

    Returns:
        The wrapped model in eval mode.
    """
    transformers = _transformers()
    folder: Path | None = Path(source).expanduser()
    assert folder is not None
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise InputError(f"'{str(folder)[:120]}' has no config.json: save the model with save_pretrained.")
        if not any(folder.glob("*.safetensors")):
            raise InputError("The folder has no .safetensors weights; only safetensors are loaded (a .bin file is a "
                             "pickle that can run code).")
        try:
            model = transformers.AutoModelForImageClassification.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"Cannot load the Hugging Face model in '{str(folder)[:120]}': {str(exc)[:160]}") from None
    else:
        if not _hub_reachable():
            raise InputError(f"Cannot get '{source[:80]}' from the Hugging Face hub: it cannot be reached from here; "
                             "save the model with save_pretrained where it can and pass the folder.")
        try:
            model = transformers.AutoModelForImageClassification.from_pretrained(source, use_safetensors=True)
        except Exception:  # noqa: BLE001 - offline, unknown id, no safetensors: one sentence either way
            raise InputError(f"Cannot get '{source[:80]}' from the Hugging Face hub (no network here?); save it with "
                             "save_pretrained elsewhere and pass the folder.") from None
        folder = None
    config = model.config
    channels = int(getattr(config, "num_channels", 3))
    if num_classes is not None and int(config.num_labels) != num_classes:
        raise InputError(f"The Hugging Face model has {config.num_labels} classes but the dataset has {num_classes}.")
    mean, std = _preprocessing(folder, channels)
    return HFImageClassifier(model, int(getattr(config, "image_size", 224)), channels, mean, std).eval()


def hf_original(model_name: str, dataset: Any) -> nn.Module:
    """The pretrained model for ``hf:<source>`` as a lab Classifier (registered on the way)."""
    from .models import Classifier

    _, pretrained = register_hf(model_name.removeprefix(HF_PREFIX), dataset.num_classes)
    c = dataset.input_shape[0]
    return Classifier(pretrained, (0.0,) * c, (1.0,) * c).eval()


def register_hf(source: str, num_classes: int | None = None) -> tuple[str, HFImageClassifier]:
    """Load ``source`` and register its architecture as ``hf:<source>`` (so retraining, the audit's
    reference and ZRF's random model build the same architecture, freshly initialised).

    Returns:
        The registered name and the pretrained model.
    """
    from .models import ModelSpec, register

    pretrained = load_hf_classifier(source, num_classes)
    transformers = _transformers()
    config = pretrained.model.config
    mean, std = pretrained.preprocessing

    def build(c: int, k: int, s: int) -> nn.Module:
        fresh = transformers.AutoModelForImageClassification.from_config(config)
        return HFImageClassifier(fresh, pretrained.image_size, pretrained.channels, mean, std)

    name = HF_PREFIX + source
    register(ModelSpec(name, f"Hugging Face {type(pretrained.model).__name__} from {source}", build, 10, 1e-4, 32,
                       optimizer="adamw", weight_decay=0.05, default_alpha=5.0, own_normalisation=True))
    return name, pretrained
