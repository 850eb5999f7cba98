"""Work the user does not wait for, at a lower OS priority: prefetching the slider's neighbours (one
background thread evaluates the α rungs either side of the current one, cards and collapse check, so a
step-by-step slider move finds its numbers already in the shared store; the same numbers the foreground would
compute: it calls :func:`ui.resources.compute_live` and :func:`ui.resources.collapse_check`), and the collapse
guard's own pass after the page is drawn (:func:`at_low_priority`)."""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import streamlit as st

from ssd_core.settings import settings
from unlearning_lab import jobs

from .resources import Prepared, collapse_check, compute_live
from .store import resource_store

log = logging.getLogger("unlearning_lab.ui")
T = TypeVar("T")


class _Prefetcher:
    """One background thread that evaluates the settings a user is likely to move to next (the
    alpha rungs either side of the current one), so a step-by-step slider move finds its numbers
    already in the shared store. The newest request replaces any queued one; nothing runs while a
    heavy job (training, importance) holds the server, and each result is exactly what the
    foreground would compute (the store's single-flight means a move to a setting being prefetched
    waits for it instead of computing it twice)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queue: list[tuple[Prepared, float, float]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        atexit.register(self.stop)  # a thread still inside torch at interpreter exit aborts the process

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._queue = []
            thread = self._thread
            self._lock.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def submit(self, prepared: Prepared, settings: list[tuple[float, float]]) -> None:
        with self._lock:
            if self._stopping:
                return
            self._queue = [(prepared, a, lam) for a, lam in settings]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lab-prefetch", daemon=True)
                self._thread.start()
            self._lock.notify()

    def _run(self) -> None:
        _lower_priority()
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    if not self._lock.wait(timeout=10):
                        break
                if self._stopping or not self._queue:
                    self._thread = None
                    return
                prepared, alpha, lam = self._queue.pop(0)
            gate = jobs.default_gate()
            if gate.active or gate.waiting:
                continue  # the server is busy with heavier work: skip, never slow it down
            try:  # what a hand-set move to this setting shows: its cards and, after them, its collapse check
                collapse_check(prepared, compute_live(prepared, alpha, lam, scratch=None))
            except Exception:  # a prefetch that fails is simply not there
                log.debug("prefetch of alpha %s failed", alpha, exc_info=True)


BACKGROUND_NICENESS = 10


def _lower_priority() -> None:
    """Run this thread (and the torch worker threads it starts, which inherit it) at a lower OS priority: on a
    2-core machine a prefetch then takes what the foreground move and the browser drawing it leave (a move to
    the very setting being prefetched still waits for it). Linux only (elsewhere a no-op)."""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICENESS))
    except (AttributeError, OSError):  # not Linux, or not allowed
        log.debug("could not lower the prefetch thread's priority", exc_info=True)


@st.cache_resource(show_spinner=False)
def _low_priority_worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-low-priority", initializer=_lower_priority)


def at_low_priority(work: Callable[[], T]) -> T:
    """``work()``'s result, computed in a thread at the prefetcher's lower priority while the caller waits: for
    work the user sees after the page is drawn (the collapse guard's own forward pass), so the browser drawing
    the new cards and figures is not starved of the CPU by it."""
    return _low_priority_worker().submit(work).result()


@st.cache_resource(show_spinner=False)
def _prefetcher() -> _Prefetcher:
    return _Prefetcher()


def prefetch_neighbours(prepared: Prepared, alpha: float, lam: float, options: list[float],
                        previous: float | None = None) -> None:
    """Evaluate, in the background, the slider values just above and below ``alpha`` (shared runs
    only; a session's own upload is never worked on outside its requests). The one in the direction of the
    last move (from ``previous``) comes first: a user stepping down keeps stepping down more often than not."""
    if prepared.setup.is_session_local or not settings().prefetch:
        return
    if alpha not in options:
        return
    i = options.index(alpha)
    order = (i - 1, i + 1) if previous is not None and previous > alpha else (i + 1, i - 1)
    neighbours = [options[j] for j in order if 0 <= j < len(options)]
    wanted = [(a, lam) for a in neighbours if resource_store().peek("live", (prepared.key, float(a), float(lam))) is None]
    if wanted:
        _prefetcher().submit(prepared, wanted)
