"""Shared page parts: preparing a run with visible progress, and the model card."""

from __future__ import annotations

import streamlit as st

from . import resources
from .errors import guard
from .resources import Prepared
from .state import RunSetup
from unlearning_lab.text import plain

SOURCES = {"shipped": "shipped checkpoint", "cache": "cached checkpoint", "trained": "trained just now"}


K_TRAIN_OK = "_train_confirmed"  # the setups whose training this session confirmed


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(5, 5 * round(seconds / 5)):.0f} seconds"
    return f"{seconds / 60:.0f} minutes"


def confirm_training(setup: RunSetup) -> bool:
    """Training an original model costs time: ask first, saying how long it will take here."""
    confirmed = st.session_state.setdefault(K_TRAIN_OK, set())
    key = (setup.dataset, setup.model, setup.seed, setup.device, setup.data_upload)
    if key in confirmed:
        return True
    seconds, epochs, n_train = resources.training_estimate(setup)
    where = "kept in this session only" if setup.is_session_local else "then cached on disk, so this happens once"
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.info(f"There is no trained **{setup.model}** for **{plain(setup.dataset)}** yet. Training it here takes about "
            f"{_duration(seconds)} ({epochs} epochs on {n_train:,} images); it is {where}.",
            icon=":material/model_training:")
    if c2.button(f"Train {setup.model} now", key="train_confirm", type="primary", icon=":material/play_arrow:",
                 width="stretch"):
        confirmed.add(key)
        return True
    return False


def prepare_with_status(setup: RunSetup) -> Prepared | None:
    """The prepared run; when it must be built, a status box shows each stage with a progress bar.

    A model that must be trained first is trained only after the user confirms (see
    :func:`confirm_training`). On failure one sentence is shown and None returned, so the rest
    of the page keeps working.
    """
    resources.configure_torch()
    cached = resources.peek_prepared(setup)
    if cached is not None:
        return cached
    prepared: Prepared | None = None
    with guard("preparing the model and importances"):
        if resources.needs_training(setup) and not confirm_training(setup):
            return None
        with st.status(f"Preparing {plain(setup.describe(), None)}…", expanded=True) as status:
            bar = st.progress(0.0, text="starting")

            def progress(fraction: float, message: str) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=message)

            try:
                prepared = resources.prepare(setup, progress)
            except BaseException:
                status.update(label="Preparation failed", state="error", expanded=False)
                raise
            source = SOURCES.get(prepared.original.trained.source, prepared.original.trained.source)
            status.update(
                label=f"Ready: {source}, set up in {sum(prepared.seconds.values()):.1f} s",
                state="complete", expanded=False,
            )
    return prepared


def model_card(prepared: Prepared) -> None:
    """One line saying what the page is looking at."""
    t = prepared.original.trained
    s = prepared.setup
    n_params = sum(p.numel() for p in prepared.model.parameters())
    source = SOURCES.get(t.source, t.source)
    st.caption(
        f"**{s.model}** on **{s.dataset}** ({source}, test accuracy {100 * t.test_acc:.1f}%, {n_params:,} parameters) · "
        f"forgetting {s.request.describe()} ({len(prepared.split.forget_train):,} training images) · "
        f"**{s.method.upper()}** with the {s.estimator} estimator · device {prepared.device} · seed {s.seed}"
    )
