"""Load the heavy libraries once per server process, before any page runs.

Every browser session runs the app in its own thread. On a freshly started server, several
sessions arriving together would import numpy, torch and plotly concurrently, and Python can then
hand one thread a partially initialised module ("partially initialized module 'numpy' has no
attribute 'ndarray'"). ``st.cache_resource`` runs :func:`load_libraries` once; sessions that
arrive meanwhile wait for it (with a spinner) instead of importing alongside it.

:func:`warm_up` goes one step further when the server starts (serve.py's lifespan): it also prepares the
default first screen, so the first visitor does not wait for the import, the run and automatic α.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import streamlit as st

log = logging.getLogger("unlearning_lab.ui")

# What the first screen needs. pandas (tables on other pages) and scikit-learn (only a fallback for reading
# digits, ssd_core.data.embedded) are imported where they are used, inside functions, so no module import is
# under way in that thread, which is what made concurrent top-level imports hand out half-initialised modules.
HEAVY = ("numpy", "torch", "plotly.graph_objects", "plotly.io")


@st.cache_resource(show_spinner="Starting the lab: loading PyTorch and the figure libraries (once after a restart)…")
def load_libraries() -> tuple[str, ...]:
    """Import the heavy libraries, unlearning_lab and the ui modules (which import ssd_core); returns what failed.

    A module that fails to import is only logged here: the page that needs it reports the error.
    """
    failed = []
    lab = Path(__file__).parent.parent / "unlearning_lab"
    lab_modules = sorted(f"unlearning_lab.{p.stem}" for p in lab.glob("*.py") if not p.stem.startswith("_"))
    ui_modules = sorted(f"ui.{p.stem}" for p in Path(__file__).parent.glob("*.py")
                        if not p.stem.startswith("_") and p.stem != "startup")
    for name in (*HEAVY, *lab_modules, *ui_modules):
        try:
            importlib.import_module(name)
        except Exception:
            log.warning("could not import %s at start-up", name, exc_info=True)
            failed.append(name)
    return tuple(failed)


@st.cache_resource(show_spinner=False)
def load_plugins() -> tuple[str, ...]:
    """Import the plug-in files named in ``UNLEARNING_LAB_PLUGINS`` (``settings().plugins``), once per
    server, as the CLI's ``--plugin``: the methods, datasets and models they register appear on the
    pages. Returns one sentence per file that failed."""
    from ssd_core.errors import InputError
    from ssd_core.methods import load_plugin
    from ssd_core.settings import settings

    failed = []
    for path in settings().plugins:
        try:
            load_plugin(path)
        except InputError as exc:
            failed.append(str(exc))
    return tuple(failed)


def warm_up() -> None:
    """At server start, before anyone asks: the libraries, then the default first screen (digits, class 3,
    automatic α), into the same process-wide caches a session reads. A visitor who arrives meanwhile waits
    for that work instead of starting it again (``st.cache_resource`` and the result store build each key
    once), and one who arrives later gets the first screen from the cache. It runs in a daemon thread
    (serve.py); a failure is only logged, the page that needs the same work reports it."""
    try:
        load_libraries()
        from . import resources
        from .state import DEFAULT_LAMBDA, RunSetup

        start = time.perf_counter()
        prepared = resources.prepare(RunSetup())
        resources.auto_alpha(prepared, DEFAULT_LAMBDA)
        log.info("warm-up: the default first screen is ready (%.1f s)", time.perf_counter() - start)
    except Exception:
        log.warning("warm-up failed; the first visitor computes the default first screen", exc_info=True)


class _QuietWarmUp(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warning for the warm-up thread, which has no session on
    purpose (the caches it fills are process-wide)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != "warm-up"


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """The server's lifespan (serve.py): start :func:`warm_up` beside the server, which answers at once."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_QuietWarmUp())
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    yield None
