"""Shared page parts: preparing a run with visible progress, and the model card."""

from __future__ import annotations

import streamlit as st

from . import resources
from .errors import guard
from .resources import Prepared
from .state import RunSetup

SOURCES = {"shipped": "shipped checkpoint", "cache": "cached checkpoint", "trained": "trained just now"}


def prepare_with_status(setup: RunSetup) -> Prepared | None:
    """The prepared run; when it must be built, a status box shows each stage with a progress bar.

    On failure one sentence is shown and None returned, so the rest of the page keeps working.
    """
    resources.configure_torch()
    cached = resources.peek_prepared(setup)
    if cached is not None:
        return cached
    prepared: Prepared | None = None
    with guard("preparing the model and importances"):
        with st.status(f"Preparing {setup.describe()}…", expanded=True) as status:
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
