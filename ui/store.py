"""Where the dashboard keeps what it computed: the process-wide store for results every session may
share, each session's own store for results built from its uploads, and the datasets (once per process).

Which store a result goes to depends on what its run setup depends on (:func:`store_for`), so the
code that computes a result never branches on where it is kept.
"""

from __future__ import annotations

import streamlit as st

from ssd_core.data import ImageDataset, load_dataset
from ssd_core.metrics import Evaluation, SplitOutputs
from ssd_core.settings import settings
from unlearning_lab.store import ResultStore

from .state import RunSetup


@st.cache_resource(show_spinner=False)
def resource_store() -> ResultStore:
    """The process-wide store (one per server process, shared by all sessions).

    ``UNLEARNING_LAB_MAX_PREPARED`` (default 8) bounds how many prepared runs (original model,
    importances, evaluation of one run setup) are kept; a classroom forgetting ten different
    classes of one dataset keeps most of them warm. ``UNLEARNING_LAB_MAX_LIVE`` (default 64) and
    ``UNLEARNING_LAB_LIVE_CACHE_MB`` (default 256) bound the evaluations of slider settings kept
    (their logits on the train and test splits; see :func:`compute_live`).
    """
    config = settings()
    return ResultStore(
        {"model": 4, "prepared": config.max_prepared, "saliency_before": 16, "live": config.max_live},
        {"live": (config.live_cache_mb * 1024 * 1024, _live_bytes),
         "original_outputs": (config.live_cache_mb * 1024 * 1024, lambda o: _live_bytes((o, None)))},
    )


K_SESSION_STORE = "_session_store"  # (setup key, ResultStore): the results of this session's upload run
SESSION_LIVE_BYTES = 128 * 1024 * 1024


def store_for(setup: RunSetup) -> ResultStore:
    """Where the results of ``setup`` are kept, by what it depends on: the process-wide store when it
    is built from shared things only (registry datasets and models: every session may reuse its
    results), this session's own store when it holds an upload (no other session may see it). A
    session keeps one upload run's results at a time: another setup replaces them (memory)."""
    store = _kept_store(setup, create=True)
    assert store is not None
    return store


def existing_store(setup: RunSetup) -> ResultStore | None:
    """:func:`store_for` without replacing this session's kept upload run: None for another upload setup."""
    return _kept_store(setup, create=False)


def _kept_store(setup: RunSetup, *, create: bool) -> ResultStore | None:
    if not setup.is_session_local:
        return resource_store()
    memo = st.session_state.get(K_SESSION_STORE)
    if memo is None or memo[0] != setup.key():
        if not create:
            return None
        memo = (setup.key(), ResultStore({"prepared": 1, "original_outputs": 1, "ratios": 1, "guard": 1},
                                         {"live": (SESSION_LIVE_BYTES, _live_bytes)}))
        st.session_state[K_SESSION_STORE] = memo  # the previous upload run's results go with the old store
    return memo[1]


def _live_bytes(value: tuple[SplitOutputs, Evaluation | None]) -> int:
    outputs = value[0]
    return sum(t.numel() * t.element_size() for t in (outputs.train_logits, outputs.test_logits))


@st.cache_resource(show_spinner="Loading the dataset…")
def cached_dataset(name: str, data_dir: str | None = None) -> ImageDataset:
    """A dataset, loaded once per process. Never mutate what you get."""
    return load_dataset(name, data_dir)
