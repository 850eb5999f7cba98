"""The graph of a model's evaluation (``torch.fx``), traced without disturbing other threads.

:mod:`ssd_core.prefix` runs part of this graph, :mod:`ssd_core.folding` rewrites it with batch norms folded.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch
from torch import fx, nn

log = logging.getLogger(__name__)


class _OwnThreadTracer(fx.Tracer):
    """``torch.fx`` patches ``nn.Module.__call__`` and ``__getattr__`` for the whole process while it traces, so a
    forward pass in another thread at that moment (a second session, the prefetcher, the server's warm-up) would
    run through the tracer and fail ("module is not installed as a submodule") or read proxies for parameters.
    This tracer traces only its own thread; any other thread gets the plain call and the plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self._owner = threading.get_ident()

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if threading.get_ident() != self._owner:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if threading.get_ident() != self._owner:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


def trace(model: nn.Module) -> fx.Graph | None:
    """The graph of ``model``'s forward pass in evaluation (None where ``torch.fx`` cannot trace it)."""
    try:
        with torch.no_grad():  # the graph of an evaluation (models may take in-place steps then, models._inference)
            return _OwnThreadTracer().trace(model)
    except Exception:  # data-dependent control flow etc.: callers fall back to the plain forward pass
        log.debug("torch.fx cannot trace %s; evaluating it as it is", type(model).__name__, exc_info=True)
        return None
