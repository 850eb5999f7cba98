"""The preset picker (on the Lesson and Landscape pages): choose one of ``ssd_core.presets`` and
apply it, i.e. set the sidebar's session_state keys (and alpha/lambda) and rerun.

:func:`preset_state` is pure (preset in, {session_state key: value} out) and is what the tests
check; :func:`render_picker` draws the picker. Presets whose dataset files are missing are listed
but their button is disabled, with a note saying which files to add.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ssd_core.presets import CLASSROOM, PAPER, PRESETS, Preset, class_index, get_preset

from . import resources
from .live import K_ALPHA_FOR  # set with a preset so live.init_sliders keeps the preset's alpha
from .state import (
    K_ALPHA,
    K_CLASS,
    K_DATASET,
    K_ESTIMATOR,
    K_K,
    K_KIND,
    K_LAMBDA,
    K_METHOD,
    K_MODEL,
    K_SEED,
    K_SUBCLASS,
    LAMBDA_MAX,
    LAMBDA_MIN,
    snap_alpha,
)

K_PICK = "preset_pick"
K_APPLIED = "_preset_applied"

DEFAULT_ESTIMATORS = {"ssd": "fisher", "lfssd": "lossfree"}
FILE_HINTS = {
    "cifar10": "cifar-10-batches-bin/",
    "cifar100": "cifar-100-binary/",
    "cifar20": "cifar-100-binary/",
    "mnist": "the MNIST IDX files",
    "fashion_mnist": "the Fashion-MNIST IDX files",
}


def preset_state(preset: Preset, classes: list[str] | None = None) -> dict[str, Any]:
    """The session_state values that select ``preset`` in the sidebar and the sliders."""
    state: dict[str, Any] = {
        K_DATASET: preset.dataset,
        K_MODEL: preset.model,
        K_KIND: preset.forget_kind,
        K_METHOD: preset.method,
        K_ESTIMATOR: DEFAULT_ESTIMATORS.get(preset.method, "fisher"),
        K_SEED: int(preset.seed),
        K_ALPHA: snap_alpha(preset.alpha),
        K_LAMBDA: float(min(max(round(preset.lam, 2), LAMBDA_MIN), LAMBDA_MAX)),
        K_ALPHA_FOR: (preset.model, preset.method),
    }
    if preset.forget_kind == "class":
        state[K_CLASS] = class_index(preset, classes)
    elif preset.forget_kind == "subclass":
        state[K_SUBCLASS] = str(preset.forget_target)
    elif preset.forget_kind == "random":
        state[K_K] = int(preset.forget_k or 1)
    return state


def availability(preset: Preset, datasets: list[str]) -> tuple[bool, str]:
    """(usable here, note): a file dataset is usable when its files are in the data folder."""
    if preset.dataset in datasets:
        return True, preset.note
    where = FILE_HINTS.get(preset.dataset, "its files")
    return False, (f"Needs the {preset.dataset.upper()} files ({where}) in the data folder "
                   "($UNLEARNING_LAB_DATA or ~/.cache/unlearning-lab/data); they are not there, so this preset is "
                   "disabled. " + preset.note)


def apply_preset(key: str) -> None:
    """Callback: write the preset into session_state (runs before the next rerun draws the sidebar)."""
    preset = get_preset(key)
    for name, value in preset_state(preset).items():
        st.session_state[name] = value
    st.session_state[K_APPLIED] = key


def _label(preset: Preset, usable: bool) -> str:
    group = "Classroom" if preset.group == CLASSROOM else "Paper"
    return f"{group} · {preset.title}" + ("" if usable else "  (data files missing)")


def render_picker(where: str) -> None:
    """A compact picker: a select box of every preset, a note and an Apply button."""
    datasets = resources.available_datasets()
    usable = {p.key: availability(p, datasets) for p in PRESETS}
    keys = [p.key for p in PRESETS if p.group == CLASSROOM] + [p.key for p in PRESETS if p.group == PAPER]
    applied = st.session_state.pop(K_APPLIED, None)
    with st.expander("Presets: the paper's setups and classroom examples", expanded=False, icon=":material/bookmarks:"):
        if st.session_state.get(K_PICK) not in keys:
            st.session_state[K_PICK] = keys[0]
        c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
        key = c1.selectbox("Preset", keys, key=K_PICK, format_func=lambda k: _label(get_preset(k), usable[k][0]))
        ok, note = usable[key]
        c2.button("Apply", key=f"preset_apply_{where}", on_click=apply_preset, args=(key,), disabled=not ok,
                  icon=":material/play_arrow:", type="primary", width="stretch",
                  help="Sets the run setup in the sidebar and α/λ." if ok else "The data files for this preset are missing.")
        preset = get_preset(key)
        st.caption(preset.describe())
        (st.caption if ok else st.warning)(note)
    if applied:
        st.toast(f"Preset applied: {get_preset(applied).title}", icon=":material/check:")
