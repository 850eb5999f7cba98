"""Bring your own model and data: checkpoint and dataset-zip uploads, and local data folders.

Everything a user uploads stays in their session (``st.session_state``): it is never put in the
process-wide resource store, and a setup using it is prepared in the session only (see
:func:`ui.resources.prepare`). Files are checked by ``ssd_core.checkpoints`` and
``unlearning_lab.uploads``; a refused file shows their one-sentence message and changes nothing, so the
model and dataset in use before stay in use.

The handlers (:func:`add_checkpoint`, :func:`add_dataset_zip`, :func:`add_local_dataset`) take
bytes and a session-state mapping, so they can be tested without a browser; the panels below draw
the sidebar widgets and call them.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from ssd_core.checkpoints import MB, ModelConfig, load_model, max_checkpoint_bytes, read_model_config
from ssd_core.data import FILE_DATASETS, ImageDataset, available_datasets
from ssd_core.errors import InputError
from ssd_core.hf import hf_classifier_from_upload, hold_architecture, is_hf_config, register_hf_architecture
from ssd_core.importance import model_fingerprint
from ssd_core.models import Classifier, register_factory
from ssd_core.settings import settings
from unlearning_lab import jobs
from unlearning_lab.text import plain
from unlearning_lab.uploads import UploadLimits, allowed_data_roots, check_local_data_dir, load_image_zip, spill_to_disk, spool

from .state import keep, kept
from .store import cached_dataset

# session_state keys
K_MODELS = "_uploaded_models"  # id -> UploadedModel
K_DATASETS = "_uploaded_datasets"  # id -> UploadedDataset
K_LOCAL = "_local_datasets"  # id -> LocalDataset
K_CKPT_MEMO = "_checkpoint_upload_memo"
K_ZIP_MEMO = "_zip_upload_memo"
K_LOCAL_MEMO = "_local_folder_memo"
K_DOWNLOAD_ERROR = "_download_error"
K_DOWNLOAD_NAME = "download_dataset_name"
K_DOWNLOAD = "download_dataset"
K_ZIP_CURRENT = "_zip_current"  # (file_id, file name, SessionFolder holding the spooled zip)
K_ZIP_GEN = "_zip_uploader_generation"  # bumped to empty the uploader once its file is on disk
# widget keys
K_CKPT_FILE = "upload_checkpoint"
K_CKPT_CONFIG = "upload_checkpoint_config"
K_CKPT_ARCH = "upload_checkpoint_arch"
K_CKPT_CLASSES = "upload_checkpoint_classes"
K_ZIP_FILE = "upload_dataset_zip"
K_ZIP_TEST = "upload_dataset_test_fraction"
K_ZIP_SIZE = "upload_dataset_image_size"
K_LOCAL_NAME = "local_dataset_kind"
K_LOCAL_DIR = "local_dataset_dir"
K_LOCAL_LOAD = "local_dataset_load"
K_FACTORY = "model_factory_path"
K_FACTORY_FORM = "model_factory_form"

UPLOAD_PREFIX = "upload:"
LOCAL_PREFIX = "local:"
MAX_PER_SESSION = 2  # uploaded models, and uploaded datasets, kept per session (oldest dropped)
IMAGE_SIZES = (8, 16, 28, 32, 64, 96, 128)
OWN_SIZE = "own"


@dataclass
class UploadedModel:
    id: str
    filename: str
    config: ModelConfig
    model: Classifier  # eval mode; this session's only
    fingerprint: str  # of the weights: keys this model's importances
    size_bytes: int

    def label(self) -> str:
        c, h, w = self.config.input_shape
        return f"your {self.config.model} — {self.filename} ({self.config.num_classes} classes, {c}×{h}×{w})"

    def fits(self, dataset: ImageDataset) -> bool:
        return self.config.num_classes == dataset.num_classes and tuple(self.config.input_shape) == dataset.input_shape


class SessionFolder:
    """A folder on disk that lives as long as the object: when the session (or the upload) that
    holds it is dropped, the folder and its files are deleted."""

    def __init__(self, prefix: str = "session-") -> None:
        root = Path(tempfile.gettempdir()) / "unlearning-lab-uploads"
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def remove(self) -> None:
        self._finalizer()


@dataclass
class UploadedDataset:
    id: str
    filename: str
    dataset: ImageDataset  # its images memory-mapped from files in ``folder`` (not held in memory)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    folder: SessionFolder | None = field(default=None, repr=False, compare=False)

    def label(self) -> str:
        ds = self.dataset
        c, h, w = ds.input_shape
        return (f"your data — {self.filename} ({ds.num_classes} classes, {len(ds.train_y)}+{len(ds.test_y)} images, "
                f"{c}×{h}×{w})")


@dataclass
class LocalDataset:
    id: str
    name: str  # one of FILE_DATASETS
    path: str  # resolved, under an allowed root

    def label(self) -> str:
        return f"{self.name} from {self.path}"


# ---------------------------------------------------------------------------------------------
# Handlers (bytes + a session-state mapping; no widgets)


def _store(state: MutableMapping[Any, Any], key: str) -> OrderedDict:
    store = state.get(key)
    if not isinstance(store, OrderedDict):
        store = OrderedDict()
        state[key] = store
    return store


def _remember(store: OrderedDict, item_id: str, item: Any, limit: int = MAX_PER_SESSION) -> None:
    store[item_id] = item
    store.move_to_end(item_id)
    while len(store) > limit:
        store.popitem(last=False)


def safe_stem(filename: str, fallback: str = "upload") -> str:
    """A short, printable name from a file name ('My pets (v2).zip' -> 'My_pets_v2')."""
    stem = Path(str(filename or "")).stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:40]
    return stem or fallback


def checkpoint_config(
    dataset: ImageDataset, architecture: str, num_classes: int, config_json: bytes | None = None
) -> ModelConfig:
    """The config to load a checkpoint with: the uploaded JSON (our export's), else the chosen
    architecture and number of classes with the dataset's image shape and normalisation."""
    if config_json is not None:
        return read_model_config(config_json)
    same = int(num_classes) == dataset.num_classes
    return ModelConfig(
        model=architecture,
        num_classes=int(num_classes),
        input_shape=dataset.input_shape,
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        dataset=dataset.name,
        classes=list(dataset.classes) if same else None,
    ).validate()


def add_checkpoint(
    state: MutableMapping[Any, Any],
    data: bytes,
    filename: str,
    *,
    dataset: ImageDataset,
    architecture: str,
    num_classes: int,
    config_json: bytes | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> UploadedModel:
    """Load an uploaded checkpoint safely and keep it in ``state``; InputError (one sentence) if refused.

    Nothing in ``state`` changes when the checkpoint is refused.
    """
    if not data:
        raise InputError("The checkpoint file is empty.")
    if config_json is not None and is_hf_config(_json_object(config_json)):
        return _add_hf_checkpoint(state, data, filename, config_json, dataset, on_wait)
    config = checkpoint_config(dataset, architecture, num_classes, config_json)
    with jobs.default_gate().slot(on_wait=on_wait):
        model = load_model(data, config, max_bytes=max_checkpoint_bytes())
        fingerprint = model_fingerprint(model)
    c, h, w = config.input_shape
    dc, dh, dw = dataset.input_shape
    if config.num_classes != dataset.num_classes:
        raise InputError(
            f"The checkpoint is a {config.num_classes}-class model but the dataset {dataset.name} has "
            f"{dataset.num_classes} classes; pick (or upload) the dataset it was trained on."
        )
    if (c, h, w) != (dc, dh, dw):
        raise InputError(
            f"The checkpoint expects {c}×{h}×{w} images but the dataset {dataset.name} has {dc}×{dh}×{dw}; "
            "pick (or upload) the dataset it was trained on."
        )
    return _keep_model(state, model, config, fingerprint, filename, len(data), "checkpoint")


def _keep_model(state: MutableMapping[Any, Any], model: Classifier, config: ModelConfig, fingerprint: str,
                filename: str, size: int, fallback_name: str) -> UploadedModel:
    """Keep a loaded upload in this session (trainable, so its importances can be taken)."""
    for p in model.parameters():
        p.requires_grad_(True)
    upload = UploadedModel(f"{UPLOAD_PREFIX}{fingerprint}", Path(str(filename)).name[:80] or fallback_name, config,
                           model, fingerprint, size)
    _remember(_store(state, K_MODELS), upload.id, upload)
    return upload


HF_UPLOAD_PREFIX = "hf:upload-"  # an uploaded Hugging Face model's architecture (registered for retraining)


def shared_models(models: Mapping[str, Any]) -> dict[str, Any]:
    """The registry's architectures a session may pick or a link may name: not the ones registered for
    someone's Hugging Face upload (each session reaches its own upload by its ``upload:`` id)."""
    return {name: spec for name, spec in models.items() if not name.startswith(HF_UPLOAD_PREFIX)}


def _json_object(data: bytes) -> object:
    try:
        return json.loads(data[: 1 * MB].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _add_hf_checkpoint(state: MutableMapping[Any, Any], data: bytes, filename: str, config_json: bytes,
                       dataset: ImageDataset, on_wait: Callable[[int], None] | None) -> UploadedModel:
    """A Hugging Face image classifier from its config.json and model.safetensors. Its architecture is
    registered as ``hf:upload-<fingerprint>`` so retraining and the audit build the same network."""
    with jobs.default_gate().slot(on_wait=on_wait):
        pretrained = hf_classifier_from_upload(config_json, data, dataset.num_classes, max_checkpoint_bytes())
        c = dataset.input_shape[0]
        model = Classifier(pretrained, (0.0,) * c, (1.0,) * c).eval()
        fingerprint = model_fingerprint(model)
    name = f"{HF_UPLOAD_PREFIX}{fingerprint[:12]}"
    register_hf_architecture(name, f"Hugging Face {type(pretrained.model).__name__} (uploaded)", pretrained)
    config = ModelConfig(model=name, num_classes=dataset.num_classes, input_shape=dataset.input_shape,
                         mean=(0.0,) * c, std=(1.0,) * c, classes=list(dataset.classes)).validate()
    upload = _keep_model(state, model, config, fingerprint, filename, len(data), "model.safetensors")
    hold_architecture(name, upload)  # registered while this upload (or another using it) lives
    return upload


def add_dataset_zip(
    state: MutableMapping[Any, Any],
    data: bytes | str | Path,
    filename: str,
    *,
    image_size: int | None,
    test_fraction: float,
    seed: int = 0,
    limits: UploadLimits | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> UploadedDataset:
    """Read an uploaded zip of an image folder (its bytes, or the file it was spooled to) and keep
    the dataset in ``state``, its images on disk; InputError (one sentence) if refused."""
    name = safe_stem(filename, "upload")
    if name in available_datasets():
        name = f"{name}_upload"  # never mistaken for the built-in dataset of that name
    with jobs.default_gate().slot(on_wait=on_wait):
        result = load_image_zip(data, image_size=image_size, test_fraction=float(test_fraction), seed=int(seed),
                                limits=limits or UploadLimits(), name=name)
        dataset_id = f"{UPLOAD_PREFIX}{result.dataset.fingerprint()}"
        folder = SessionFolder("dataset-")
        dataset = spill_to_disk(result.dataset, folder.path)
    upload = UploadedDataset(dataset_id, Path(str(filename)).name[:80] or "upload.zip", dataset,
                             list(result.warnings), list(result.skipped), folder)
    _remember(_store(state, K_DATASETS), upload.id, upload)
    return upload


def add_local_dataset(
    state: MutableMapping[Any, Any], name: str, path: str, load: Callable[[str, str], ImageDataset]
) -> LocalDataset:
    """Check a server folder against the allowed roots, load ``name`` from it, and remember it."""
    if name not in FILE_DATASETS:
        raise InputError(f"'{name}' is not a file-based dataset; choose one of {', '.join(FILE_DATASETS)}.")
    resolved = check_local_data_dir(path)
    if not resolved.is_dir():
        raise InputError(f"The folder '{resolved}' does not exist on this server.")
    load(name, str(resolved))  # InputError naming the missing files
    local = LocalDataset(f"{LOCAL_PREFIX}{name}:{resolved}", name, str(resolved))
    _remember(_store(state, K_LOCAL), local.id, local, limit=8)
    return local


def get_model(state: MutableMapping[Any, Any], fingerprint_or_id: str) -> UploadedModel | None:
    store = state.get(K_MODELS) or {}
    return store.get(fingerprint_or_id) or store.get(f"{UPLOAD_PREFIX}{fingerprint_or_id}")


def get_dataset(state: MutableMapping[Any, Any], fingerprint_or_id: str) -> UploadedDataset | None:
    store = state.get(K_DATASETS) or {}
    return store.get(fingerprint_or_id) or store.get(f"{UPLOAD_PREFIX}{fingerprint_or_id}")


def uploaded_datasets(state: MutableMapping[Any, Any]) -> dict[str, UploadedDataset]:
    return dict(state.get(K_DATASETS) or {})


def local_datasets(state: MutableMapping[Any, Any]) -> dict[str, LocalDataset]:
    return dict(state.get(K_LOCAL) or {})


def models_for(state: MutableMapping[Any, Any], dataset: ImageDataset) -> dict[str, UploadedModel]:
    """This session's uploaded models that fit ``dataset`` (classes and image shape)."""
    return {k: m for k, m in (state.get(K_MODELS) or {}).items() if m.fits(dataset)}


# ---------------------------------------------------------------------------------------------
# Panels (sidebar widgets)


def _queued(placeholder) -> Callable[[int], None]:
    def on_wait(position: int) -> None:
        placeholder.info(f"Queued: {position - 1} ahead of you; this starts by itself.", icon=":material/hourglass:")

    return on_wait


def _size_mb(n_bytes: int) -> int:
    return max(1, int(n_bytes // MB))


def dataset_panel(seed: int, model_input_size: int | None) -> str | None:
    """The 'your own data' controls: a zip upload and a server folder. Returns the id of a dataset
    that was just added (to select it), or None. Messages are drawn where this is called."""
    limits = UploadLimits()
    added: str | None = None
    slot = st.empty()  # "Queued: …" while waiting, then this panel's messages
    with st.expander("Your own data", icon=":material/upload_file:"):
        generation = int(st.session_state.get(K_ZIP_GEN, 0))
        zip_file = st.file_uploader(
            "Image folder as a .zip", type=["zip"], key=f"{K_ZIP_FILE}_{generation}",
            max_upload_size=_size_mb(limits.max_upload_bytes),
            help="One sub-folder of images per class (PNG, JPEG, BMP, GIF, WebP, TIFF, PPM), optionally inside "
            "train/ and test/. Checked before use; it is kept on the server's disk for your session only.",
        )
        current = st.session_state.get(K_ZIP_CURRENT)
        if current is not None:
            st.caption(f"In use: {plain(current[1], 60)} (kept on disk for this session).")
        st.caption("Uploads stay in your browser session only; shareable links leave them out.")
        st.slider("Test fraction", 0.05, 0.5, step=0.05, **keep(K_ZIP_TEST, 0.2),
                  help="The share of each class held out for testing (when the zip has no test/ folder).")
        sizes: list[Any] = [OWN_SIZE, *IMAGE_SIZES]
        if model_input_size and model_input_size not in sizes:
            sizes.insert(1, model_input_size)
        default = model_input_size if model_input_size else OWN_SIZE
        st.selectbox(
            "Image size", sizes, **keep(K_ZIP_SIZE, default, valid=sizes),
            format_func=lambda s: "the images' own (all must match)" if s == OWN_SIZE else f"resize to {s}×{s}",
            help="Your model's input size when you use an uploaded checkpoint; otherwise the images' own size.",
        )
        st.markdown("**or** a dataset folder on this server")
        local_name = st.selectbox("Format", list(FILE_DATASETS), **keep(K_LOCAL_NAME, FILE_DATASETS[0],
                                                                         valid=list(FILE_DATASETS)))
        local_dir = st.text_input("Folder", **keep(K_LOCAL_DIR, ""), placeholder=str(allowed_data_roots()[0]),
                                  help="Only folders under " + ", ".join(str(r) for r in allowed_data_roots())
                                  + " ($UNLEARNING_LAB_DATA_ROOTS) can be read.")
        load_clicked = st.button("Load folder", key=K_LOCAL_LOAD, icon=":material/folder_open:")
        missing = downloadable_missing()
        download_name: str | None = None
        if missing:
            st.markdown("**or** download a public dataset")
            download_name = st.selectbox("Dataset to download", missing, key=K_DOWNLOAD_NAME,
                                         format_func=lambda n: DOWNLOAD_LABELS.get(n, n))
            download_clicked = st.button("Download", key=K_DOWNLOAD, icon=":material/download:",
                                         help="Fetched from the dataset's official address into the lab's data folder "
                                         f"({settings().data_dir}); needs internet.")
            download_name = download_name if download_clicked else None

    state = st.session_state
    notes: list[tuple[str, str]] = []  # (kind, text)
    # a new zip: spooled to disk in chunks, then the uploader is emptied (Streamlit drops its copy)
    if zip_file is not None:
        current = state.get(K_ZIP_CURRENT)
        if current is None or current[0] != zip_file.file_id:
            try:
                folder = SessionFolder("zip-")
                spool(zip_file, folder.path, "upload.zip", limits.max_upload_bytes)
                state[K_ZIP_CURRENT] = (zip_file.file_id, zip_file.name, folder)
            except InputError as exc:
                notes.append(("error", str(exc)))
        state[K_ZIP_GEN] = int(state.get(K_ZIP_GEN, 0)) + 1
        if not notes:
            st.rerun()  # draw the emptied uploader now, so the next file goes into it
    # the zip in use: processed once per (file, options), from disk
    current = state.get(K_ZIP_CURRENT)
    if current is not None:
        file_id, filename, folder = current
        size = kept(K_ZIP_SIZE, OWN_SIZE)
        image_size = None if size == OWN_SIZE else int(size)
        signature = (file_id, float(kept(K_ZIP_TEST, 0.2)), image_size, int(seed))
        memo = state.get(K_ZIP_MEMO)
        if memo is None or memo[0] != signature:
            try:
                new_data = add_dataset_zip(state, folder.path / "upload.zip", filename, image_size=image_size,
                                           test_fraction=signature[1], seed=seed, limits=limits,
                                           on_wait=_queued(slot))
                memo = (signature, new_data.id, None)
                added = new_data.id
            except InputError as exc:
                memo = (signature, None, str(exc))
            state[K_ZIP_MEMO] = memo
        _, upload_id, error = memo
        if error:
            notes.append(("error", error))
        elif upload_id and (upload := get_dataset(state, upload_id)) is not None:
            if upload.warnings:
                notes.append(("warning", " ".join(upload.warnings)))
            if added:
                notes.append(("success", f"Loaded {upload.filename}: {upload.dataset.num_classes} classes, "
                                         f"{len(upload.dataset.train_y)} training and {len(upload.dataset.test_y)} "
                                         "test images; it is now the dataset in use."))

    # a server folder: on the button
    if load_clicked:
        try:
            local = add_local_dataset(state, local_name, local_dir, cached_dataset)
            state[K_LOCAL_MEMO] = ((local_name, local_dir), None)
            added = local.id
            notes.append(("success", f"Loaded {local.label()}; it is now the dataset in use."))
        except InputError as exc:
            state[K_LOCAL_MEMO] = ((local_name, local_dir), str(exc))
    memo = state.get(K_LOCAL_MEMO)
    if memo is not None and memo[0] == (local_name, local_dir) and memo[1]:
        notes.append(("error", memo[1]))
    if download_name is not None:
        fetched = download_dataset(download_name, slot)
        if fetched is None:
            notes.append(("error", str(state.get(K_DOWNLOAD_ERROR))))
        else:
            added = fetched
            notes.append(("success", f"Downloaded {DOWNLOAD_LABELS.get(fetched, fetched)}; it is now the dataset in use."))
    _show(slot, notes)
    return added


# The public datasets the panel can fetch (file datasets with official addresses), with their sizes.
DOWNLOAD_LABELS = {
    "fashion_mnist": "Fashion-MNIST (30 MB)", "mnist": "MNIST (12 MB)",
    "cifar10": "CIFAR-10 (163 MB)", "cifar100": "CIFAR-100 (161 MB)",
}


def downloadable_missing() -> list[str]:
    """The public datasets whose files are not found here (what the download button offers)."""
    from ssd_core.data.files import dataset_files_present

    return [name for name in DOWNLOAD_LABELS if not dataset_files_present(name)]


def download_dataset(name: str, slot) -> str | None:
    """Fetch ``name`` into the lab's data folder with a progress bar in ``slot``; its name, or None with
    the one-sentence reason kept under K_DOWNLOAD_ERROR (offline, say)."""
    from ssd_core.data import load_dataset

    bar = slot.progress(0.0, text=f"Downloading {DOWNLOAD_LABELS.get(name, name)}…")
    try:
        load_dataset(name, None, download=True, progress=lambda f, m: bar.progress(f, text=m))
    except InputError as exc:
        st.session_state[K_DOWNLOAD_ERROR] = str(exc)
        return None
    finally:
        slot.empty()
    return name


_ICONS = {"error": ":material/error:", "warning": ":material/warning:", "success": ":material/check_circle:"}


def _show(slot, notes: list[tuple[str, str]]) -> None:
    if not notes:
        slot.empty()
        return
    box = slot.container()
    for kind, text in notes:
        getattr(box, kind)(plain(text, limit=None), icon=_ICONS[kind])  # names from the upload stay text


def add_model_factory(path: str) -> str:
    """Register ``package.module:function`` from the server's Python path as an architecture, where
    the server's settings allow it (importing code runs it); InputError (one sentence) otherwise."""
    if not settings().allow_model_factory:
        raise InputError("Architectures from Python code are off on this server (importing code runs it); its "
                         "admin can allow them with UNLEARNING_LAB_ALLOW_MODEL_FACTORY=1, or use the CLI's "
                         "--model-factory.")
    return register_factory(path.strip())


def factory_control() -> str | None:
    """'Architecture from code' (package.module:function), only where the server allows it; returns the
    architecture just registered (to select it)."""
    if not settings().allow_model_factory:
        st.caption("Architectures from your own Python code are off on this server: importing code runs it. Use "
                   "the CLI's --model-factory, or ask the server's admin (UNLEARNING_LAB_ALLOW_MODEL_FACTORY=1).")
        return None
    with st.form(K_FACTORY_FORM, border=False):
        path = st.text_input("Architecture from code", key=K_FACTORY, placeholder="package.module:function",
                             help="function(in_channels, num_classes, image_size) returning a torch nn.Module "
                             "(images in [0, 1] to logits), importable on the server. It is trained on the chosen "
                             "dataset when you confirm.")
        submitted = st.form_submit_button("Use this architecture")
    if not submitted or not path.strip():
        return None
    try:
        name = add_model_factory(path)
    except InputError as exc:
        st.error(plain(str(exc), limit=None), icon=":material/error:")
        return None
    st.success(plain(f"{name} is now the architecture in use.", limit=None), icon=":material/check_circle:")
    return name


def checkpoint_panel(dataset: ImageDataset, registry: list[str], default_arch: str) -> str | None:
    """The 'your own model' controls. Returns the id of a model that was just loaded (to select it)."""
    state = st.session_state
    added: str | None = None
    slot = st.empty()
    with st.expander("Your own model", icon=":material/upload:"):
        weights = st.file_uploader(
            "Checkpoint (.safetensors, .pt, .pth)", type=["safetensors", "pt", "pth"], key=K_CKPT_FILE,
            max_upload_size=_size_mb(max_checkpoint_bytes()),
            help="A state dict: safetensors, or torch.save(model.state_dict()). Pickled code is refused before "
            f"anything is loaded; at most {_size_mb(max_checkpoint_bytes())} MB ($UNLEARNING_LAB_MAX_CHECKPOINT_MB).",
        )
        config_file = st.file_uploader(
            "Model config .json (optional)", type=["json"], key=K_CKPT_CONFIG,
            help="The .json saved next to the weights by this dashboard's export (it sets the architecture and classes), "
            "or a Hugging Face config.json with its model.safetensors (a transformers image classifier, normalised "
            "with mean and std 0.5 per channel).",
        )
        st.caption("Uploads stay in your browser session only; shareable links leave them out.")
        factory = factory_control()
        arch = st.selectbox("Architecture", registry, disabled=config_file is not None,
                            **keep(K_CKPT_ARCH, default_arch if default_arch in registry else registry[0], valid=registry))
        classes = st.number_input("Number of classes", min_value=2, max_value=10_000, step=1,
                                  **keep(K_CKPT_CLASSES, dataset.num_classes),
                                  disabled=config_file is not None,
                                  help=f"{dataset.name} has {dataset.num_classes}; the model must have one output per class.")
    if weights is None:
        state.pop(K_CKPT_MEMO, None)
        slot.empty()
        return factory
    config_bytes = config_file.getvalue() if config_file is not None else None
    # loaded when the file or these choices change (not when the dataset changes: a model loaded
    # for another dataset is simply not offered for this one)
    signature = (weights.file_id, config_file.file_id if config_file is not None else None, arch, int(classes))
    memo = state.get(K_CKPT_MEMO)
    if memo is None or memo[0] != signature:
        try:
            new_model = add_checkpoint(state, weights.getvalue(), weights.name, dataset=dataset, architecture=arch,
                                       num_classes=int(classes), config_json=config_bytes, on_wait=_queued(slot))
            memo = (signature, new_model.id, None)
            added = new_model.id
        except InputError as exc:
            memo = (signature, None, str(exc))
        state[K_CKPT_MEMO] = memo
    _, upload_id, error = memo
    notes: list[tuple[str, str]] = []
    upload = get_model(state, upload_id) if upload_id else None
    if error:
        notes.append(("error", error))
    elif upload is not None and not upload.fits(dataset):
        c, h, w = upload.config.input_shape
        notes.append(("warning", f"{upload.filename} is a {upload.config.num_classes}-class model for {c}×{h}×{w} images, "
                                 f"so it is not offered for {dataset.name}; pick the dataset it was trained on."))
    elif added and upload is not None:
        note = ""
        if upload.config.dataset and upload.config.dataset != dataset.name:
            note = f" Its config says it was trained on {upload.config.dataset}."
        notes.append(("success", f"Loaded {upload.filename} as {upload.config.model} ({upload.config.num_classes} "
                                 f"classes); it is now the model in use.{note}"))
    _show(slot, notes)
    return added
