"""Shared page parts: a status box for long work, preparing a run, and the model card."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import streamlit as st

from unlearning_lab.text import duration, plain

from . import resources
from .errors import WorkCancelled, guard
from .resources import Prepared
from .state import RunSetup

SOURCES = {"shipped": "shipped checkpoint", "cache": "cached checkpoint", "trained": "trained just now"}


class Work:
    """What long work reports to its status box: progress, waiting for a slot, the closing label."""

    def __init__(self, status, label: str) -> None:
        self._status = status
        self._label = label
        self._bar = st.progress(0.0, text="starting")
        self.done_label = f"{label.rstrip('…')}: done"
        self._start = time.perf_counter()

    def progress(self, fraction: float, message: str) -> None:
        """A progress callback in ssd_core's shape (fraction in [0, 1], message); after a few seconds the
        text adds the time left, from the pace so far."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self._bar.progress(fraction, text=message + time_left(fraction, time.perf_counter() - self._start))

    def waiting(self, message: str) -> None:
        """Shown in the box's label while the job waits for a free slot ("": it started, the plain label again).
        The box stays open: an update that leaves ``expanded`` out folds it in the browser, and the Cancel button
        and the progress bar inside it went out of sight while the job waited and then ran."""
        label = f"{self._label.rstrip('…')}: {message}" if message else self._label
        self._status.update(label=label, expanded=True)

    def done(self, label: str) -> None:
        """The label the box closes with."""
        self.done_label = label


def time_left(fraction: float, elapsed: float) -> str:
    """' · about 2 min left' from the share done and the seconds it took; nothing while the pace is not
    known yet (under 3 s or 2% in) or the work is done."""
    if elapsed < 3 or fraction < 0.02 or fraction >= 1:
        return ""
    return f" · about {duration(elapsed * (1 - fraction) / fraction)} left"


def grid(count: int, per_row: int) -> list[Any]:
    """``count`` places, ``per_row`` columns to a row (presentation mode's cards and buttons)."""
    places: list[Any] = []
    for _ in range(0, count, per_row):
        places.extend(st.columns(per_row))
    return places[:count]


def note_beside(widths: list[int]) -> tuple[Any, Any]:
    """Places for a note and its button: side by side in columns of ``widths``; one under the other in
    presentation mode, where the large type would break the button's words in a narrow column."""
    from .theme import presentation_on

    if presentation_on():
        return st.container(), st.container()
    left, right = st.columns(widths, vertical_alignment="center")
    return left, right


K_CANCEL = "_work_cancel"  # the label of the work a Cancel click stopped (set by the click's callback)
K_CANCELLED = "_work_cancelled"  # the same label, for the one run that follows the click


def take_cancel() -> None:
    """Once at the top of every run (app.py): the Cancel clicked since the last run, for this run only."""
    label = st.session_state.pop(K_CANCEL, None)
    st.session_state[K_CANCELLED] = label
    if label:
        st.toast(f"Cancelled: {label.rstrip('…')}. Nothing was kept.", icon=":material/stop_circle:")


def _cancel(label: str) -> None:
    st.session_state[K_CANCEL] = label
    st.session_state.pop(K_TRAIN_OK, None)  # a cancelled training asks again before it starts again


@contextlib.contextmanager
def working(label: str, failed: str | None = None) -> Iterator[Work]:
    """A status box with a progress bar and a Cancel button; it closes as complete, or as failed when the
    work raises.

    Cancel works through Streamlit itself: the click asks for a new run, which stops this one at its next
    progress update (an exception through the work, so every slot and lock it holds is released and
    nothing half-built is kept). The exception still propagates, so a surrounding :func:`~ui.errors.guard`
    shows the one sentence.
    """
    if st.session_state.get(K_CANCELLED) == label:
        st.session_state[K_CANCELLED] = None
        raise WorkCancelled(f"Cancelled: {label.rstrip('…')}. Nothing was kept, and the server's place for it is "
                            "free again; it starts when you next ask for it.")
    with st.status(label, expanded=True) as status:
        cancel = st.empty()
        cancel.button("Cancel", key=f"cancel:{label}", icon=":material/stop_circle:", on_click=_cancel, args=(label,),
                      help="Stops this job at its next step and frees its place on the server; nothing is kept.")
        work = Work(status, label)
        try:
            yield work
        except BaseException:
            status.update(label=failed or f"{label.rstrip('…')} failed", state="error", expanded=False)
            raise
        finally:
            cancel.empty()
        status.update(label=work.done_label, state="complete", expanded=False)


K_TRAIN_OK = "_train_confirmed"  # the setups whose training this session confirmed


def confirm_training(setup: RunSetup) -> bool:
    """Training an original model costs time: ask first, saying how long it will take here."""
    confirmed = st.session_state.setdefault(K_TRAIN_OK, set())
    key = (setup.dataset, setup.model, setup.seed, setup.device, setup.data_upload)
    if key in confirmed:
        return True
    seconds, epochs, n_train = resources.training_estimate(setup)
    where = "kept in this session only" if setup.is_session_local else "then cached on disk, so this happens once"
    c1, c2 = note_beside([4, 1])
    c1.info(f"There is no trained **{setup.model}** for **{plain(setup.dataset)}** yet. Training it here takes about "
            f"{duration(seconds)} ({epochs} epochs on {n_train:,} images); it is {where}.",
            icon=":material/model_training:")
    # The click confirms in a callback, so the run it starts trains without this box and its button on screen.
    c2.button(f"Train {setup.model} now", key="train_confirm", type="primary", icon=":material/play_arrow:",
              width="stretch", on_click=confirmed.add, args=(key,))
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
        training = resources.needs_training(setup)
        if training and not confirm_training(setup):
            return None
        with working(f"Preparing {plain(setup.describe(), None)}…", failed="Preparation failed") as work:
            prepared = resources.prepare(setup, work.progress)
            source = SOURCES.get(prepared.original.trained.source, prepared.original.trained.source)
            work.done(f"Ready: {source}, set up in {sum(prepared.seconds.values()):.1f} s")
    if prepared is not None and training:
        # The sidebar said "no trained model yet" when this run began: draw the page again from the top, so
        # nothing on screen describes the state before training.
        st.toast(f"Ready: {setup.model} {source}, set up in {sum(prepared.seconds.values()):.1f} s",
                 icon=":material/task_alt:")
        st.rerun()
    return prepared


def prepared_or_hint(setup: RunSetup | None, hint: str) -> Prepared | None:
    """The page's prepared run, or ``hint`` (what to finish in the sidebar) and None when the setup
    is not complete yet."""
    if setup is None:
        st.info(hint, icon=":material/arrow_back:")
        return None
    return prepare_with_status(setup)


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
