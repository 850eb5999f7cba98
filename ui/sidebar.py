"""The shared sidebar: the run setup (dataset, model, what to forget, method, device, seed).

Datasets and models come from the registry, from a user's uploads (a checkpoint, a zip of
images) or from a folder on the server; see :mod:`ui.uploads`. A link's settings are applied
once per session before the widgets are drawn (see :mod:`ui.links`).
"""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from ssd_core.data import ForgetRequest, ImageDataset, make_split, parse_indices
from ssd_core.errors import InputError
from ssd_core.methods import config_fields
from ssd_core.models import available_models, resolve_device

from . import links, resources, uploads
from .errors import show_error
from .state import (
    ALPHA_VALUES,
    LAMBDA_MAX,
    LAMBDA_MIN,
    DEFAULT_DATASET,
    DEFAULT_FORGET_CLASS,
    DEFAULT_METHOD,
    DEFAULT_MODEL,
    DEVICES,
    K_BATCH,
    K_CLASS,
    K_DATASET,
    K_DEVICE,
    K_ESTIMATOR,
    K_INDICES,
    K_K,
    K_KIND,
    K_METHOD,
    K_MODEL,
    K_SEED,
    K_SUBCLASS,
    RunSetup,
)

KIND_LABELS = {
    "class": "a whole class",
    "subclass": "a sub-class",
    "random": "k random samples",
    "indices": "picked samples",
}
DEVICE_LABELS = {"auto": "Auto", "cpu": "CPU", "gpu": "GPU"}
DATASET_LABELS = {
    "digits": "digits — 8×8 handwritten digits",
    "shapes": "shapes — 32×32 coloured shapes",
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "cifar20": "CIFAR-20 (100 sub-classes)",
}


def _valid(key: str, options: Sequence[Any], default: Any) -> None:
    """Reset a stored widget value that is no longer among the options (e.g. after a dataset change)."""
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default
    elif key not in st.session_state:
        st.session_state[key] = default


def _link_choices() -> links.LinkChoices:
    return links.LinkChoices(
        datasets=resources.available_datasets(),
        models=list(available_models()),
        methods=list(resources.ui_methods()),
        alpha_range=(min(ALPHA_VALUES), max(ALPHA_VALUES)),
        lambda_range=(LAMBDA_MIN, LAMBDA_MAX),
    )


def _dataset_info(name: str) -> tuple[int, int, list[str] | None]:
    dataset = resources.cached_dataset(name)
    return dataset.num_classes, len(dataset.train_y), dataset.subclass_names


def _method_supports(method: str, kind: str) -> bool:
    spec = resources.ui_methods().get(method)
    return spec is not None and kind in spec.supports


def _restore_link() -> None:
    """Apply the link this session was opened with (once), and say what in it was wrong."""
    if not st.session_state.get(links.K_APPLIED):
        links.restore_setup(_link_choices(), _dataset_info, _method_supports, resources.default_alpha)
    links.show_warnings()


def _dataset_labels(choices: list[str]) -> dict[str, str]:
    """Labels for the dataset picker (computed now: a format_func must not read session state later)."""
    uploaded, local = uploads.uploaded_datasets(st.session_state), uploads.local_datasets(st.session_state)
    return {c: uploaded[c].label() if c in uploaded else local[c].label() if c in local else DATASET_LABELS.get(c, c)
            for c in choices}


def _choose_dataset(sb) -> tuple[str, ImageDataset, str | None, str | None] | None:
    """The dataset picker plus 'your own data'; returns (choice, dataset, data_dir, upload fingerprint)."""
    slot = sb.container()  # the picker goes above the upload panel, but is drawn after it (it may select a new upload)
    with sb:
        model_choice = st.session_state.get(K_MODEL)
        model_upload = uploads.get_model(st.session_state, model_choice) if isinstance(model_choice, str) else None
        size = model_upload.config.input_shape[1] if model_upload is not None else None
        added = uploads.dataset_panel(int(st.session_state.get(K_SEED, 0)), size)
    if added is not None:
        st.session_state[K_DATASET] = added
    builtin = resources.available_datasets()
    choices = builtin + list(uploads.local_datasets(st.session_state)) + list(uploads.uploaded_datasets(st.session_state))
    _valid(K_DATASET, choices, DEFAULT_DATASET if DEFAULT_DATASET in choices else choices[0])
    labels = _dataset_labels(choices)
    choice = slot.selectbox(
        "Dataset", choices, key=K_DATASET, persist_state="session", format_func=lambda c: labels.get(c, c),
        help="Embedded datasets need nothing; file datasets appear when their files are in the data folder "
        "($UNLEARNING_LAB_DATA or ~/.cache/unlearning-lab/data). Your own data: below.",
    )
    upload = uploads.get_dataset(st.session_state, choice)
    if upload is not None:
        return choice, upload.dataset, None, upload.dataset.fingerprint()
    local = uploads.local_datasets(st.session_state).get(choice)
    name, data_dir = (local.name, local.path) if local is not None else (choice, None)
    try:
        return choice, resources.cached_dataset(name, data_dir), data_dir, None
    except Exception as exc:  # noqa: BLE001
        with sb:
            show_error(exc, f"loading {name}")
        return None


def _choose_model(sb, dataset: ImageDataset, models: dict) -> tuple[str, str | None]:
    """The model picker plus 'your own model'; returns (architecture, uploaded weights fingerprint)."""
    registry = list(models)
    slot = sb.container()
    with sb:
        current = st.session_state.get(K_MODEL)
        default_arch = current if current in registry else DEFAULT_MODEL
        added = uploads.checkpoint_panel(dataset, registry, default_arch)
    if added is not None:
        st.session_state[K_MODEL] = added
    uploaded = uploads.models_for(st.session_state, dataset)
    choices = registry + list(uploaded)
    _valid(K_MODEL, choices, DEFAULT_MODEL if DEFAULT_MODEL in registry else registry[0])
    choice = slot.selectbox(
        "Model", choices, key=K_MODEL, persist_state="session",
        format_func=lambda n: uploaded[n].label() if n in uploaded else f"{n} — {models[n].description}",
        help="A shipped or cached checkpoint is used when there is one; otherwise the model is trained once "
        "(with a progress bar) and cached on disk. Your own checkpoint: below.",
    )
    if choice in uploaded:
        return uploaded[choice].config.model, uploaded[choice].fingerprint
    return choice, None


def _device(device: str) -> str:
    """The chosen device if it exists here; otherwise one sentence and the CPU."""
    try:
        resolve_device(device)
        return device
    except InputError as exc:
        st.sidebar.error(f"{exc} Showing CPU results instead.", icon=":material/error:")
        return "cpu"


def run_setup() -> RunSetup | None:
    """Draw the sidebar and return the chosen setup (None when the choice is not usable yet)."""
    _restore_link()
    sb = st.sidebar
    sb.markdown("### Run setup")

    picked = _choose_dataset(sb)
    if picked is None:
        return None
    dataset_choice, dataset, data_dir, data_upload = picked
    dataset_name = dataset.name
    models = available_models()  # once per run: it probes optional packages (torchvision) each call
    model_name, model_upload = _choose_model(sb, dataset, models)

    if data_upload is None and model_upload is None and \
            resources.checkpoint_source(dataset, model_name, int(st.session_state.get(K_SEED, 0))) is None:
        epochs = models[model_name].epochs
        sb.caption(f":material/model_training: No checkpoint yet for {model_name} on {dataset_name}: it will be trained "
                   f"now ({epochs} epochs, with a progress bar) and cached for next time.")
    elif data_upload is not None and model_upload is None:
        sb.caption(f":material/model_training: {model_name} will be trained on your data now "
                   f"({models[model_name].epochs} epochs, kept for this session only).")

    sb.markdown("##### What to forget")
    methods = resources.ui_methods()
    kinds = ["class", "random", "indices"]
    if dataset.subclass_names:
        kinds.insert(1, "subclass")
    _valid(K_KIND, kinds, "class")
    kind = sb.radio("Forget", kinds, key=K_KIND, persist_state="session", format_func=KIND_LABELS.get,
                    horizontal=True, label_visibility="collapsed")
    request: ForgetRequest | None = None
    seed_value = int(st.session_state.get(K_SEED, 0))
    if kind == "class":
        classes = list(range(dataset.num_classes))
        _valid(K_CLASS, classes, min(DEFAULT_FORGET_CLASS, dataset.num_classes - 1))
        target = sb.selectbox("Class to forget", classes, key=K_CLASS, persist_state="session",
                              format_func=lambda i: dataset.classes[i] if dataset.classes[i] == str(i) else f"{i}: {dataset.classes[i]}")
        request = ForgetRequest("class", int(target))
    elif kind == "subclass":
        names = list(dataset.subclass_names or [])
        _valid(K_SUBCLASS, names, names[0])
        target = sb.selectbox("Sub-class to forget", names, key=K_SUBCLASS, persist_state="session")
        request = ForgetRequest("subclass", target)
    elif kind == "random":
        n_train = len(dataset.train_y)
        if K_K not in st.session_state or not 1 <= int(st.session_state[K_K]) < n_train:
            st.session_state[K_K] = min(50, n_train - 1)
        k = sb.number_input("Number of random training samples", min_value=1, max_value=n_train - 1, step=10,
                            key=K_K, persist_state="session", help="Drawn with the seed below.")
        request = ForgetRequest("random", k=int(k), seed=seed_value)
    else:
        if K_INDICES not in st.session_state:
            st.session_state[K_INDICES] = "0-9"
        text = sb.text_input("Training-set indices", key=K_INDICES, persist_state="session",
                             help="Comma-separated indices and ranges, e.g. 0, 5, 17-20.")
        try:
            indices = parse_indices(text)
            if not indices:
                raise InputError("Type at least one training-set index, e.g. 0, 5, 17-20.")
            request = ForgetRequest("indices", indices=indices)
            make_split(dataset, request)  # cheap; refuses indices out of range or covering everything
            labels = [dataset.classes[int(dataset.train_y[i])] for i in indices[:8] if 0 <= i < len(dataset.train_y)]
            if labels:
                sb.caption(f"{len(indices)} samples; labels of the first: {', '.join(labels)}")
        except InputError as exc:
            with sb:
                show_error(exc, "reading the indices")
            request = None

    sb.markdown("##### Method")
    method_names = [m for m in methods if kind in methods[m].supports]
    if not method_names:
        with sb:
            st.error("No live method supports this kind of forget request.")
        return None
    _valid(K_METHOD, method_names, DEFAULT_METHOD if DEFAULT_METHOD in method_names else method_names[0])
    method = sb.selectbox("Unlearning method", method_names, key=K_METHOD, persist_state="session",
                          format_func=lambda m: m.upper(), label_visibility="collapsed")
    sb.caption(methods[method].description)

    fields = {f["name"]: f for f in config_fields(methods[method].config_cls)}
    with sb.expander("Advanced", expanded=False):
        estimators = list(fields.get("estimator", {}).get("choices") or [fields.get("estimator", {}).get("default", "fisher")])
        _valid(K_ESTIMATOR, estimators, fields.get("estimator", {}).get("default", estimators[0]))
        estimator = st.selectbox("Importance estimator", estimators, key=K_ESTIMATOR, persist_state="session",
                                 help=fields.get("estimator", {}).get("help"))
        batch_default = int(fields.get("batch_size", {}).get("default", 64))
        if K_BATCH not in st.session_state:
            st.session_state[K_BATCH] = batch_default
        batch_size = st.number_input("Importance batch size", min_value=1, max_value=4096, step=16, key=K_BATCH,
                                     persist_state="session", help=fields.get("batch_size", {}).get("help"))
        _valid(K_DEVICE, list(DEVICES), "auto")
        device = st.radio("Device", list(DEVICES), key=K_DEVICE, persist_state="session", horizontal=True,
                          format_func=DEVICE_LABELS.get,
                          help="Auto picks a CUDA GPU, then Apple MPS, then the CPU.")
        if K_SEED not in st.session_state:
            st.session_state[K_SEED] = 0
        seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=K_SEED, persist_state="session",
                               help="Seeds training, random forget sets and sampling; same seed, same numbers.")
    device = _device(str(device or "auto"))
    if request is None:
        return None
    local = data_upload is not None or model_upload is not None
    return RunSetup(
        dataset=dataset_name,
        model=model_name,
        request=request if request.kind != "random" else ForgetRequest("random", k=request.k, seed=int(seed)),
        method=method,
        estimator=str(estimator),
        batch_size=int(batch_size),
        device=device,
        seed=int(seed),
        data_dir=data_dir,
        data_upload=data_upload,
        model_upload=model_upload,
        owner=resources.session_id() if local else None,
    )
