"""Showing failures as one clear sentence while the rest of the page keeps working."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from ssd_core.errors import InputError
from unlearning_lab.text import plain

log = logging.getLogger("unlearning_lab.ui")


class WorkCancelled(InputError):
    """Raised by :func:`ui.layout.working` in the run right after its Cancel click, so work that starts by
    itself (preparing a run, the Lesson's relearning) does not start again at once; shown as a note."""


def show_error(exc: BaseException, what: str) -> None:
    """InputError messages as plain text (they may quote a file, tensor or class name); anything
    else a generic sentence (details go to the log)."""
    if isinstance(exc, WorkCancelled):
        st.info(str(exc), icon=":material/stop_circle:")
    elif isinstance(exc, InputError):
        st.error(plain(str(exc), limit=None), icon=":material/error:")
    else:
        log.error("failure while %s", what, exc_info=exc)
        st.error(
            f"Something went wrong while {what} (the details are in the server log); "
            "try other settings or reload the page.",
            icon=":material/error:",
        )


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Run a block; on failure show one sentence instead of a traceback and carry on.

    Streamlit's own control flow (st.stop, st.rerun) derives from BaseException and passes through.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - this is the page's last line of defence
        show_error(exc, what)
