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
import threading
import weakref
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


def _preprocessing(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The folder's preprocessor_config.json image_mean/image_std, or None when it has none."""
    file = folder / "preprocessor_config.json"
    if not file.is_file():
        return None
    try:
        processor = json.loads(file.read_text())
        return (tuple(float(v) for v in processor.get("image_mean", (0.5, 0.5, 0.5))),
                tuple(float(v) for v in processor.get("image_std", (0.5, 0.5, 0.5))))
    except (ValueError, TypeError, OSError, AttributeError):
        raise InputError("The folder's preprocessor_config.json is not valid JSON with image_mean/image_std.") from None


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


MAX_HF_CONFIG_BYTES = 1024 * 1024  # a config.json is a few kilobytes


def is_hf_config(raw: object) -> bool:
    """Whether a parsed JSON object is a Hugging Face ``config.json`` (it names a ``model_type``)
    rather than this lab's model config (which names a ``model``)."""
    return isinstance(raw, dict) and isinstance(raw.get("model_type"), str) and "model" not in raw


MAX_HF_LABELS = 100_000  # classes of a config.json's head
MAX_HF_LAYERS = 512  # transformer blocks (num_hidden_layers, or the sum of depths)
MAX_HF_SIZE = 1_048_576  # any width, image or patch size (the memory estimate below is the real check)


def _whole_in(raw: dict, key: str, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"The config.json's {key} must be a whole number from {low:,} to {high:,}; got {str(value)[:40]}.")
    return value


def check_config_counts(raw: dict) -> None:
    """Refuse a config.json whose counts no model here could have, from its numbers alone, before transformers
    reads it (building its config makes one label entry per class; building the model, one module per layer):
    classes, layers and sizes within the caps above, and the parameters a transformer of those sizes would
    have within the memory budget."""
    from .memory import check_memory

    labels = _whole_in(raw, "num_labels", 1, MAX_HF_LABELS)
    for key in ("id2label", "label2id"):
        table = raw.get(key)
        if table is not None and (not isinstance(table, dict) or not 1 <= len(table) <= MAX_HF_LABELS):
            raise InputError(f"The config.json's {key} must name 1 to {MAX_HF_LABELS:,} classes.")
        if labels is None and isinstance(table, dict):
            labels = len(table)
    layers = _whole_in(raw, "num_hidden_layers", 1, MAX_HF_LAYERS) or 0
    depths = raw.get("depths")
    if depths is not None:
        if not isinstance(depths, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                   for d in depths) or sum(depths) > MAX_HF_LAYERS:
            raise InputError(f"The config.json's depths must be whole numbers adding up to at most {MAX_HF_LAYERS}.")
        layers = max(layers, sum(depths))
    sizes = {key: _whole_in(raw, key, 1, MAX_HF_SIZE) for key in
             ("hidden_size", "intermediate_size", "embed_dim", "image_size", "patch_size", "num_attention_heads",
              "num_channels", "encoder_stride")}
    for key in ("hidden_sizes", "embed_dims"):
        widths = raw.get(key)
        if widths is not None and (not isinstance(widths, list) or not all(
                isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= MAX_HF_SIZE for w in widths)):
            raise InputError(f"The config.json's {key} must be whole numbers from 1 to {MAX_HF_SIZE:,}.")
    width = sizes["hidden_size"] or sizes["embed_dim"] or 0
    inner = sizes["intermediate_size"] or 4 * width
    parameters = layers * (4 * width * width + 2 * width * inner) + (labels or 0) * width
    check_memory(4 * parameters, "this Hugging Face model", "its config.json asks for that many layers and widths")


def _hf_config(raw: object) -> Any:
    """A transformers config from a parsed config.json, built offline; custom code is refused."""
    transformers = _transformers()
    if not is_hf_config(raw):
        raise InputError("The Hugging Face config.json must be a JSON object with a model_type.")
    assert isinstance(raw, dict)
    if raw.get("auto_map"):
        raise InputError("The config.json asks for custom model code (auto_map); only models built into transformers "
                         "are loaded, because custom code would run on this machine.")
    check_config_counts(raw)
    values = {k: v for k, v in raw.items() if k not in ("model_type", "transformers_version", "architectures")}
    try:
        return transformers.AutoConfig.for_model(raw["model_type"], **values)
    except Exception as exc:  # noqa: BLE001 - unknown model_type, bad values: one sentence either way
        raise InputError(f"transformers cannot build a '{str(raw['model_type'])[:40]}' model from this config.json "
                         f"({_first_line(exc)}).") from None


def _first(keys: list[str]) -> str:
    return f"'{keys[0][:80]}'" + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")


def _quietly(call: Any) -> Any:
    """Run a transformers call without its progress bars and load report on the terminal."""
    transformers = _transformers()
    logging_ = transformers.utils.logging
    level = logging_.get_verbosity()
    logging_.set_verbosity_error()
    logging_.disable_progress_bar()
    try:
        return call()
    finally:
        logging_.set_verbosity(level)
        logging_.enable_progress_bar()


def hf_classifier_from_folder(folder: Path, num_classes: int | None = None,
                              max_bytes: int | None = None) -> HFImageClassifier:
    """A transformers image classifier from a ``save_pretrained`` folder, loaded safely and strictly.

    The weights are first read by the lab's own checkpoint reader (safetensors only, dtype
    allow-list, size cap), and the architecture is built on the meta device so that a config asking
    for more parameters than the memory budget allows is refused before anything is allocated.
    Custom model code (``auto_map``) is refused. Missing, unexpected or mis-shaped weights are one
    sentence naming the first bad key.

    Args:
        folder: holds config.json, model.safetensors (or shards and their index) and optionally
            preprocessor_config.json (image_mean/image_std; 0.5 per channel, the ViT default, without it).
        num_classes: the dataset's classes; a different head size is refused with one sentence.
        max_bytes: the cap per weights file (the server's checkpoint cap for uploads); None: no cap.
    """
    from .memory import check_memory

    transformers = _transformers()
    file = folder / "config.json"
    if not file.is_file():
        raise InputError(f"'{str(folder)[:120]}' has no config.json: save the model with save_pretrained.")
    if file.stat().st_size > MAX_HF_CONFIG_BYTES:
        raise InputError("The config.json is larger than 1 MB; it is not a model config.")
    try:
        raw = json.loads(file.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("The config.json is not valid JSON.") from None
    config = _hf_config(raw)
    _check_weights(folder, max_bytes)
    auto = transformers.AutoModelForImageClassification
    try:
        with torch.device("meta"):
            shell = auto.from_config(config)
    except Exception as exc:  # noqa: BLE001 - not an image classifier type, inconsistent sizes
        raise InputError("This config.json does not describe a transformers image classifier "
                         f"({_first_line(exc)}).") from None
    check_memory(4 * sum(p.numel() for p in shell.state_dict().values()), "this Hugging Face model")
    if num_classes is not None and int(config.num_labels) != num_classes:
        raise InputError(f"The Hugging Face model has {config.num_labels} classes but the dataset has {num_classes}.")
    try:
        model, info = _quietly(lambda: auto.from_pretrained(
            str(folder), config=config, local_files_only=True, use_safetensors=True, output_loading_info=True,
            ignore_mismatched_sizes=True))
    except Exception as exc:  # noqa: BLE001 - any reader error: one sentence
        raise InputError(f"Cannot load the Hugging Face model in '{str(folder)[:120]}' ({_first_line(exc)}).") from None
    missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
    mismatched = sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in info["mismatched_keys"])
    if missing or unexpected or mismatched:
        parts = ([f"it lacks {_first(missing)}"] if missing else []) + \
                ([f"it has unexpected {_first(unexpected)}"] if unexpected else []) + \
                ([f"{_first(mismatched)} has another shape than the config says"] if mismatched else [])
        raise InputError(f"The weights do not match the config.json's {type(shell).__name__}: {', and '.join(parts)}.")
    channels = int(getattr(config, "num_channels", 3))
    mean, std = _preprocessing(folder) or ((0.5,) * channels, (0.5,) * channels)
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise InputError(f"image_mean and image_std must each hold {channels} values (std positive).")
    return HFImageClassifier(model.float().eval(), int(getattr(config, "image_size", 224)), channels, mean, std).eval()


def hf_classifier_from_upload(config_json: bytes, weights: bytes, num_classes: int | None = None,
                              max_bytes: int | None = None) -> HFImageClassifier:
    """:func:`hf_classifier_from_folder` for an uploaded config.json and model.safetensors (bytes):
    they are written to a temporary folder, loaded, and the folder is removed."""
    import tempfile

    if weights[:8] == b"PK\x03\x04" or not weights:
        raise InputError("A Hugging Face model is loaded from its model.safetensors; upload that file with the "
                         "config.json.")
    with tempfile.TemporaryDirectory(prefix="hf-upload-") as folder:
        (Path(folder) / "config.json").write_bytes(config_json[: MAX_HF_CONFIG_BYTES + 1])
        (Path(folder) / "model.safetensors").write_bytes(weights)
        return hf_classifier_from_folder(Path(folder), num_classes, max_bytes=max_bytes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__


def _check_weights(folder: Path, max_bytes: int | None) -> None:
    """Read the folder's safetensors weights (one file, or the shards its index names) with the
    lab's checkpoint reader, so a file it refuses (pickle, float8, bad header) is never loaded."""
    from .checkpoints import read_state_dict

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError("The folder's model.safetensors.index.json is not a valid shard index.") from None
        files = [folder / Path(str(name)).name for name in shards]
    else:
        files = [folder / "model.safetensors"]
    for file in files:
        if not file.is_file():
            raise InputError(f"'{str(folder)[:120]}' has no {file.name[:80]}; only safetensors weights are loaded "
                             "(a .bin file is a pickle that can run code).")
        read_state_dict(file, max_bytes=file.stat().st_size + 1 if max_bytes is None else max_bytes)


def load_hf_classifier(source: str, num_classes: int | None = None) -> HFImageClassifier:
    """A pretrained image classifier from a ``save_pretrained`` folder or a hub id.

    A folder is read with the lab's own safe reader (:func:`hf_classifier_from_files`); a hub id
    goes through ``from_pretrained`` with safetensors only, where the network allows.

    Args:
        source: a local folder (config.json + model.safetensors) or a hub id (needs the network).
        num_classes: the dataset's classes; a different head size is refused with one sentence.

    Returns:
        The wrapped model in eval mode.
    """
    folder = Path(source).expanduser()
    if folder.is_dir():
        return hf_classifier_from_folder(folder, num_classes)
    transformers = _transformers()
    if not _hub_reachable():
        raise InputError(f"Cannot get '{source[:80]}' from the Hugging Face hub: it cannot be reached from here; "
                         "save the model with save_pretrained where it can and pass the folder.")
    try:
        model = transformers.AutoModelForImageClassification.from_pretrained(source, use_safetensors=True)
    except Exception:  # noqa: BLE001 - offline, unknown id, no safetensors: one sentence either way
        raise InputError(f"Cannot get '{source[:80]}' from the Hugging Face hub (no network here?); save it with "
                         "save_pretrained elsewhere and pass the folder.") from None
    config = model.config
    channels = int(getattr(config, "num_channels", 3))
    if num_classes is not None and int(config.num_labels) != num_classes:
        raise InputError(f"The Hugging Face model has {config.num_labels} classes but the dataset has {num_classes}.")
    mean, std = (0.5,) * channels, (0.5,) * channels
    return HFImageClassifier(model, int(getattr(config, "image_size", 224)), channels, mean, std).eval()


def hf_original(model_name: str, dataset: Any) -> nn.Module:
    """The pretrained model for ``hf:<source>`` as a lab Classifier (registered on the way)."""
    from .models import Classifier

    _, pretrained = register_hf(model_name.removeprefix(HF_PREFIX), dataset.num_classes)
    c = dataset.input_shape[0]
    return Classifier(pretrained, (0.0,) * c, (1.0,) * c).eval()


def register_hf(source: str, num_classes: int | None = None) -> tuple[str, HFImageClassifier]:
    """Load ``source`` and register its architecture as ``hf:<source>``.

    Returns:
        The registered name and the pretrained model.
    """
    pretrained = load_hf_classifier(source, num_classes)
    name = HF_PREFIX + source
    register_hf_architecture(name, f"Hugging Face {type(pretrained.model).__name__} from {source}", pretrained)
    return name, pretrained


_HOLDERS: dict[str, int] = {}  # registered architecture -> objects holding it (see hold_architecture)
_HOLDERS_LOCK = threading.Lock()


def hold_architecture(name: str, owner: object) -> None:
    """Keep the registered architecture ``name`` while ``owner`` lives: when the last owner holding it is garbage
    collected (an uploaded model whose session ended), the registry entry goes too. Registering a session's
    upload this way keeps the process-wide registry from growing with every upload."""
    with _HOLDERS_LOCK:
        _HOLDERS[name] = _HOLDERS.get(name, 0) + 1
    weakref.finalize(owner, _release, name)


def _release(name: str) -> None:
    from .models import unregister

    with _HOLDERS_LOCK:
        left = _HOLDERS.get(name, 1) - 1
        if left > 0:
            _HOLDERS[name] = left
            return
        _HOLDERS.pop(name, None)
        unregister(name)


def register_hf_architecture(name: str, description: str, pretrained: HFImageClassifier) -> None:
    """Register ``pretrained``'s architecture under ``name`` (so retraining, the audit's reference
    and ZRF's random model build the same architecture, freshly initialised)."""
    from .models import ModelSpec, register

    transformers = _transformers()
    config = pretrained.model.config
    mean, std = pretrained.preprocessing
    image_size, channels = pretrained.image_size, pretrained.channels  # not the model: its weights stay freeable

    def build(c: int, k: int, s: int) -> nn.Module:
        fresh = transformers.AutoModelForImageClassification.from_config(config)
        return HFImageClassifier(fresh, image_size, channels, mean, std)

    register(ModelSpec(name, description, build, 10, 1e-4, 32, optimizer="adamw", weight_decay=0.05,
                       default_alpha=5.0, own_normalisation=True))
