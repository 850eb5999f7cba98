"""The shared sidebar: the run setup (dataset, model, what to forget, method, device, seed).

Every widget here is a view of the session's :class:`ui.state.LabState` (see :func:`ui.state.bind`):
the state is fitted to the chosen dataset first (:func:`ui.state.normalize`), then drawn. Datasets
and models come from the registry, from a user's uploads (a checkpoint, a zip of images) or from a
folder on the server; see :mod:`ui.uploads`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ssd_core.data import ImageDataset, make_split
from ssd_core.errors import InputError
from ssd_core.methods import config_fields
from ssd_core.models import available_models, resolve_device
from unlearning_lab.text import plain

from . import links, resources, state, uploads
from .errors import show_error
from .state import (
    DEFAULT_DATASET,
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
    LAMBDA_MAX,
    LAMBDA_MIN,
    LINK_ALPHA_RANGE,
    DatasetFacts,
    RunSetup,
    bind,
)
from .theme import presentation_on

KIND_LABELS = {
    "class": "a whole class",
    "subclass": "a sub-class",
    "random": "k random samples",
    "indices": "picked samples",
}
DEVICE_LABELS = {"auto": "Auto", "cpu": "CPU", "gpu": "GPU"}


# ---------------------------------------------------------------------------------------------
# Following the URL (app.py calls this before every page)


def link_choices() -> links.LinkChoices:
    from .live import VIEWS  # ui.live registers the last built-in tab (Export)

    return links.LinkChoices(
        datasets=resources.available_datasets(),
        models=list(uploads.shared_models(available_models())),
        methods=list(resources.ui_methods()),
        alpha_range=LINK_ALPHA_RANGE,
        lambda_range=(LAMBDA_MIN, LAMBDA_MAX),
        views=list(VIEWS),
    )


def dataset_facts(name: str) -> tuple[int, int, list[str] | None]:
    dataset = resources.cached_dataset(name)
    return dataset.num_classes, len(dataset.train_y), dataset.subclass_names


def method_supports(method: str, kind: str) -> bool:
    spec = resources.ui_methods().get(method)
    return spec is not None and kind in spec.supports


def follow_url(page: Any) -> None:
    """Make the session's state follow the URL where it changed from outside (see :func:`links.sync`)."""
    links.sync(page, link_choices(), dataset_facts, method_supports)


# ---------------------------------------------------------------------------------------------
# The widgets


def dataset_label(name: str) -> str:
    """The registered dataset's label (e.g. "Fashion-MNIST — 28×28 clothes"), or its name."""
    from ssd_core.data import available_datasets

    spec = available_datasets().get(name)
    return spec.label if spec is not None else name


def _dataset_labels(choices: list[str]) -> dict[str, str]:
    """Labels for the dataset picker (computed now: a format_func must not read session state later).
    In presentation mode, where the sidebar's type is large, only the name ("Fashion-MNIST", the label before its
    dash): the picker is not cut off."""
    uploaded, local = uploads.uploaded_datasets(st.session_state), uploads.local_datasets(st.session_state)
    if presentation_on():
        return {c: uploaded[c].filename if c in uploaded else local[c].name if c in local else
                dataset_label(c).split(" — ")[0] for c in choices}
    return {c: uploaded[c].label() if c in uploaded else local[c].label() if c in local else dataset_label(c)
            for c in choices}


def _choose_dataset(sb) -> tuple[str, ImageDataset, str | None, str | None] | None:
    """The dataset picker plus 'your own data'; returns (choice, dataset, data_dir, upload fingerprint)."""
    slot = sb.container()  # the picker goes above the upload panel, but is drawn after it (it may select a new upload)
    with sb:
        model_upload = uploads.get_model(st.session_state, state.current().model)
        size = model_upload.config.input_shape[1] if model_upload is not None else None
        added = uploads.dataset_panel(int(state.current().seed), size)
    if added is not None:
        state.update(dataset=added)
    builtin = resources.available_datasets()
    choices = builtin + list(uploads.local_datasets(st.session_state)) + list(uploads.uploaded_datasets(st.session_state))
    if state.current().dataset not in choices:
        state.update(dataset=DEFAULT_DATASET if DEFAULT_DATASET in choices else choices[0])
    labels = _dataset_labels(choices)
    choice = slot.selectbox(
        "Dataset", choices, format_func=lambda c: labels.get(c, c), **bind("dataset", K_DATASET),
        help="Embedded datasets need nothing; file datasets appear when their files are in the data folder "
        "($UNLEARNING_LAB_DATA or ~/.cache/unlearning-lab/data) or where Debian's packages put them "
        "(/usr/share/datasets: apt-get install dataset-fashion-mnist). Each dataset brings the model it is meant "
        "for. Your own data: below.",
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


def _model_label(uploaded: dict) -> Callable[[str], str]:
    """The model picker's labels: the architecture's name (its description goes below the picker, where
    it is not cut off); an upload's file and shape, or (presentation mode) its file name only."""
    if presentation_on():
        return lambda n: uploaded[n].filename if n in uploaded else n
    return lambda n: uploaded[n].label() if n in uploaded else n


def _choose_model(sb, dataset: ImageDataset, models: dict) -> tuple[str, str | None]:
    """The model picker plus 'your own model'; returns (architecture, uploaded weights fingerprint)."""
    registry = list(models)
    slot = sb.container()
    with sb:
        current = state.current().model
        default_arch = current if current in registry else state.default_model(dataset.name)
        added = uploads.checkpoint_panel(dataset, registry, default_arch if default_arch in registry else registry[0])
    if added is not None:
        state.update(model=added)
        if not added.startswith(uploads.UPLOAD_PREFIX) and added not in models:  # an architecture from code
            models = uploads.shared_models(available_models())
            registry = list(models)
    uploaded = uploads.models_for(st.session_state, dataset)
    choices = registry + list(uploaded)
    if state.current().model not in choices:
        fallback = state.default_model(dataset.name)
        state.update(model=fallback if fallback in registry else DEFAULT_MODEL if DEFAULT_MODEL in registry else registry[0])
    choice = slot.selectbox(
        "Model", choices, **bind("model", K_MODEL),
        format_func=_model_label(uploaded),
        help="A shipped or cached checkpoint is used when there is one; otherwise you are asked before the model is "
        "trained (with a progress bar) and cached on disk. Your own checkpoint: below.",
    )
    if choice in uploaded:
        return uploaded[choice].config.model, uploaded[choice].fingerprint
    if choice in models:
        slot.caption(plain(models[choice].description, None))  # wraps, where the picker would cut it off
    return choice, None


def _device(device: str) -> str:
    """The chosen device if it exists here; otherwise one sentence and the CPU."""
    try:
        resolve_device(device)
        return device
    except InputError as exc:
        st.sidebar.error(f"{plain(str(exc), None)} Showing CPU results instead.", icon=":material/error:")
        return "cpu"


def _forget_request(sb, dataset: ImageDataset, kinds: list[str]):
    """The 'what to forget' controls; returns the request, or None with the reason shown."""
    kind = sb.radio("Forget", kinds, format_func=KIND_LABELS.get, horizontal=True, label_visibility="collapsed",
                    **bind("forget_kind", K_KIND))
    if kind == "class":
        classes = list(range(dataset.num_classes))
        sb.selectbox("Class to forget", classes, **bind("forget_class", K_CLASS, int),
                     format_func=lambda i: dataset.classes[i] if dataset.classes[i] == str(i) else f"{i}: {dataset.classes[i]}")
    elif kind == "subclass":
        sb.selectbox("Sub-class to forget", list(dataset.subclass_names or []), **bind("forget_subclass", K_SUBCLASS))
    elif kind == "random":
        sb.number_input("Number of random training samples", min_value=1, max_value=len(dataset.train_y) - 1, step=10,
                        help="Drawn with the seed below.", **bind("forget_k", K_K, int))
    else:
        sb.text_input("Training-set indices", help="Comma-separated indices and ranges, e.g. 0, 5, 17-20.",
                      **bind("forget_indices", K_INDICES, str))
    try:
        request = state.current().request()
        if kind == "indices":
            if not request.indices:
                raise InputError("Type at least one training-set index, e.g. 0, 5, 17-20.")
            make_split(dataset, request)  # cheap; refuses indices out of range or covering everything
            labels = [dataset.classes[int(dataset.train_y[i])] for i in request.indices[:8]]
            sb.caption(f"{len(request.indices)} samples; labels of the first: {plain(', '.join(labels), 200)}")
        return request
    except InputError as exc:
        with sb:
            show_error(exc, "reading the indices")
        return None


def run_setup() -> RunSetup | None:
    """Draw the sidebar and return the chosen setup (None when the choice is not usable yet)."""
    links.show_warnings()
    sb = st.sidebar
    sb.markdown("### Run setup")

    picked = _choose_dataset(sb)
    if picked is None:
        return None
    _, dataset, data_dir, data_upload = picked
    models = uploads.shared_models(available_models())  # once per run: it probes optional packages (torchvision) each call
    model_name, model_upload = _choose_model(sb, dataset, models)

    methods = resources.ui_methods()
    method_kinds = {name: tuple(spec.supports) for name, spec in methods.items()}
    s = state.current()
    fields = {f["name"]: f for f in config_fields(methods[s.method].config_cls)} if s.method in methods else {}
    estimators = list(fields.get("estimator", {}).get("choices") or [])
    state.set_state(state.normalize(s, DatasetFacts(dataset.num_classes, len(dataset.train_y), dataset.subclass_names),
                                    method_kinds, estimators or None))

    if data_upload is None and model_upload is None and \
            resources.checkpoint_source(dataset, model_name, int(state.current().seed)) is None:
        sb.caption(f":material/model_training: No trained {model_name} for {dataset.name} yet: the page offers to "
                   "train it (and says how long that takes); it is then cached for next time.")
    elif data_upload is not None and model_upload is None:
        sb.caption(f":material/model_training: {model_name} is trained on your data when you confirm on the page "
                   "(kept for this session only).")

    sb.markdown("##### What to forget")
    kinds = ["class", "random", "indices"]
    if dataset.subclass_names:
        kinds.insert(1, "subclass")
    request = _forget_request(sb, dataset, kinds)

    sb.markdown("##### Method")
    kind = state.current().forget_kind
    method_names = [m for m in methods if kind in methods[m].supports]
    if not method_names:
        with sb:
            st.error("No live method supports this kind of forget request.")
        return None
    method = sb.selectbox("Unlearning method", method_names, format_func=lambda m: m.upper(),
                          label_visibility="collapsed", **bind("method", K_METHOD))
    sb.caption(methods[method].description)

    fields = {f["name"]: f for f in config_fields(methods[method].config_cls)}
    with sb.expander("Advanced", expanded=False):
        estimators = list(fields.get("estimator", {}).get("choices") or [fields.get("estimator", {}).get("default", "fisher")])
        st.selectbox("Importance estimator", estimators, help=fields.get("estimator", {}).get("help"),
                     **bind("estimator", K_ESTIMATOR))
        st.number_input("Importance batch size", min_value=1, max_value=4096, step=16,
                        help=fields.get("batch_size", {}).get("help"), **bind("batch_size", K_BATCH, int))
        st.radio("Device", list(DEVICES), horizontal=True, format_func=DEVICE_LABELS.get,
                 help="Auto picks a CUDA GPU, then Apple MPS, then the CPU.", **bind("device", K_DEVICE))
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1,
                        help="Seeds training, random forget sets and sampling; same seed, same numbers.",
                        **bind("seed", K_SEED, int))
    s = state.current()
    device = _device(str(s.device or "auto"))
    if request is None:
        return None
    local = data_upload is not None or model_upload is not None
    return RunSetup(
        dataset=dataset.name,
        model=model_name,
        request=s.request(),
        method=s.method,
        estimator=str(s.estimator),
        batch_size=int(s.batch_size),
        device=device,
        seed=int(s.seed),
        data_dir=data_dir,
        data_upload=data_upload,
        model_upload=model_upload,
        owner=resources.session_id() if local else None,
    )
