"""The preset picker (on the Lesson and Landscape pages): choose one of ``unlearning_lab.presets`` and
apply it, i.e. set the session's run setup (and alpha/lambda) and rerun.

:func:`preset_state` is pure (preset in, :class:`ui.state.LabState` out) and is what the tests
check; :func:`render_picker` draws the picker. Presets whose dataset files are missing are listed
but their button is disabled, with a note saying which files to add.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from unlearning_lab.presets import CLASSROOM, PAPER, PRESETS, Preset, class_index, get_preset

from . import resources
from . import state as lab_state
from .state import LabState, choose, clamp_lambda

K_PICK = "preset_pick"
K_APPLIED = "_preset_applied"

DEFAULT_ESTIMATORS = {"ssd": "fisher", "lfssd": "lossfree"}


def file_hint(dataset: str) -> str:
    """Where a dataset's files come from (its registration's hint)."""
    from ssd_core.data import available_datasets

    spec = available_datasets().get(dataset)
    return (spec.hint if spec is not None else None) or "its files"


def preset_state(preset: Preset, classes: list[str] | None = None, base: LabState | None = None) -> LabState:
    """The session state that selects ``preset`` (the sidebar's setup and the sliders); ``base``
    gives what a preset does not set (the open view, the device)."""
    base = base or LabState()
    state = choose(LabState(view=base.view, device=base.device), dataset=preset.dataset, model=preset.model,
                   method=preset.method)
    changes: dict[str, Any] = {
        "forget_kind": preset.forget_kind,
        "estimator": DEFAULT_ESTIMATORS.get(preset.method, state.estimator),
        "seed": int(preset.seed),
        "alpha": float(preset.alpha),
        "alpha_auto": False,  # a preset is an experiment with its own alpha
        "lam": clamp_lambda(preset.lam),
    }
    if preset.forget_kind == "class":
        changes["forget_class"] = class_index(preset, classes)
    elif preset.forget_kind == "subclass":
        changes["forget_subclass"] = str(preset.forget_target)
    elif preset.forget_kind == "random":
        changes["forget_k"] = int(preset.forget_k or 1)
    return replace(state, **changes)


def availability(preset: Preset, datasets: list[str]) -> tuple[bool, str]:
    """(usable here, note): a file dataset is usable when its files are in the data folder."""
    if preset.dataset in datasets:
        return True, preset.note
    where = file_hint(preset.dataset)
    return False, (f"Needs the {preset.dataset.upper()} files ({where}) in the data folder "
                   "($UNLEARNING_LAB_DATA or ~/.cache/unlearning-lab/data); they are not there, so this preset is "
                   "disabled. " + preset.note)


def apply_preset(key: str) -> None:
    """Callback: write the preset into session_state (runs before the next rerun draws the sidebar)."""
    lab_state.set_state(preset_state(get_preset(key), base=lab_state.current()))
    st.session_state[K_APPLIED] = key


def _label(preset: Preset) -> str:
    group = "Classroom" if preset.group == CLASSROOM else "Paper"
    return f"{group} · {preset.title}"


def missing_data_note(presets: list[Preset]) -> str:
    """One line for the presets whose data files are not here (instead of listing each, disabled)."""
    needs = sorted({file_hint(p.dataset) for p in presets})
    datasets = sorted({p.dataset.upper().replace("_", "-") for p in presets})
    return (f"{len(presets)} more preset{'s' if len(presets) != 1 else ''} ({', '.join(datasets)}) "
            f"appear here once their files ({', '.join(needs)}) are in the data folder "
            "($UNLEARNING_LAB_DATA or ~/.cache/unlearning-lab/data).")


def render_picker(where: str) -> None:
    """A compact picker of the presets usable here, a note and an Apply button; the presets whose
    data files are missing are summed up in one line."""
    datasets = resources.available_datasets()
    usable = [p for p in PRESETS if availability(p, datasets)[0]]
    missing = [p for p in PRESETS if not availability(p, datasets)[0]]
    keys = [p.key for p in usable if p.group == CLASSROOM] + [p.key for p in usable if p.group == PAPER]
    applied = st.session_state.pop(K_APPLIED, None)
    with st.expander("Presets: the paper's setups and classroom examples", expanded=False, icon=":material/bookmarks:"):
        if keys:
            c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
            key = c1.selectbox("Preset", keys, format_func=lambda k: _label(get_preset(k)),
                               **lab_state.keep(K_PICK, keys[0], valid=keys))
            c2.button("Apply", key=f"preset_apply_{where}", on_click=apply_preset, args=(key,),
                      icon=":material/play_arrow:", type="primary", width="stretch",
                      help="Sets the run setup in the sidebar and α/λ.")
            preset = get_preset(key)
            st.caption(preset.describe())
            st.caption(preset.note)
        if missing:
            st.caption(missing_data_note(missing))
    if applied:
        st.toast(f"Preset applied: {get_preset(applied).title}", icon=":material/check:")
