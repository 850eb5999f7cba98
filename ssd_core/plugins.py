"""What the registries (methods, datasets) share: loading the plug-ins installed packages declare in an
entry-point group, once, and looking a name up with one clear sentence when it is not there."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")
_LOADED: set[str] = set()


def load_entry_points(group: str, on_loaded: Callable[[Any], None] | None = None) -> None:
    """Import every entry point of ``group`` once per process (importing a module registers what it
    defines); ``on_loaded`` gets each loaded object (e.g. a spec to register). A broken plug-in is
    logged and skipped, so it cannot hide the others."""
    if group in _LOADED:
        return
    _LOADED.add(group)
    from importlib.metadata import entry_points

    for entry in entry_points(group=group):
        try:
            loaded = entry.load()
        except Exception:  # one broken plugin must not hide the others
            log.warning("could not load the plug-in %r of %s", entry.value, group, exc_info=True)
            continue
        if on_loaded is not None:
            on_loaded(loaded)


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """``registry[name]``, or an InputError naming the choices: "Unknown method 'x'; choose one of: ..."."""
    if name not in registry:
        raise InputError(f"Unknown {kind} '{str(name)[:40]}'; choose one of: {', '.join(registry)}.")
    return registry[name]
