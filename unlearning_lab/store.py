"""Results shared between sessions: one store, one builder per key, bounded in size.

A classroom of 30 asks for the same prepared run, the same slider setting, the same alpha sweep.
:class:`ResultStore` computes each key once: the first caller builds it, callers that arrive
while it is being built wait for that build (``on_shared`` lets a page say so) and get the very
same object, and later callers get it from the cache until it is evicted (oldest first, per
namespace, by count and optionally by bytes).

If a build raises an ``Exception`` (a bad request), every caller waiting on it gets that same
exception and nothing is cached. If it is interrupted by a ``BaseException`` that is not an
``Exception`` (the session that was building it stopped, e.g. Streamlit's StopException), the
waiters do not inherit the interruption: one of them builds instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_LIMIT = 8


class _Build:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.value: Any = None
        self.waiting = 0


class ResultStore:
    """A thread-safe, size-bounded cache in which each key is built once (see the module docstring)."""

    def __init__(
        self,
        limits: dict[str, int] | None = None,
        byte_limits: dict[str, tuple[int, Callable[[Any], int]]] | None = None,
    ) -> None:
        """``limits``: entries kept per namespace (default 8); ``byte_limits``: an optional
        (budget in bytes, size of a value) per namespace, evicting the oldest entries above it."""
        self._lock = threading.Lock()
        self._items: dict[str, OrderedDict[Hashable, Any]] = {}
        self._sizes: dict[str, dict[Hashable, int]] = {}
        self._building: dict[tuple[str, Hashable], _Build] = {}
        self._limits = limits or {}
        self._byte_limits = byte_limits or {}

    def peek(self, namespace: str, key: Hashable) -> Any | None:
        """The cached value, or None (never builds)."""
        with self._lock:
            return self._items.get(namespace, OrderedDict()).get(key)

    def building(self) -> int:
        """How many keys are being built now."""
        with self._lock:
            return len(self._building)

    def waiting(self, namespace: str, key: Hashable) -> int:
        """How many callers wait for the build of ``key`` (besides the one building it)."""
        with self._lock:
            build = self._building.get((namespace, key))
            return build.waiting if build is not None else 0

    def get(
        self, namespace: str, key: Hashable, build: Callable[[], Any], on_shared: Callable[[], None] | None = None
    ) -> Any:
        """The value for ``key``: cached, or the build in progress (waited for), or built now."""
        told = False
        while True:
            with self._lock:
                items = self._items.setdefault(namespace, OrderedDict())
                if key in items:
                    items.move_to_end(key)
                    return items[key]
                found = self._building.get((namespace, key))
                leader = found is None
                if found is None:
                    current = self._building[(namespace, key)] = _Build()
                else:
                    current = found
                    current.waiting += 1
            if leader:
                return self._build(namespace, key, current, build)
            if on_shared is not None and not told:
                told = True
                on_shared()
            current.done.wait()
            if current.error is None:
                return current.value
            if isinstance(current.error, Exception):
                raise current.error
            # the builder was interrupted, not failed: try again (perhaps as the builder)

    def _build(self, namespace: str, key: Hashable, current: _Build, build: Callable[[], Any]) -> Any:
        try:
            value = build()  # outside the lock: other keys stay available
            self._keep(namespace, key, value)
            current.value = value
            return value
        except BaseException as exc:
            current.error = exc
            raise
        finally:
            with self._lock:
                self._building.pop((namespace, key), None)
            current.done.set()

    def _keep(self, namespace: str, key: Hashable, value: Any) -> None:
        budget, sizeof = self._byte_limits.get(namespace, (0, None))
        size = sizeof(value) if sizeof is not None else 0
        with self._lock:
            items = self._items.setdefault(namespace, OrderedDict())
            items[key] = value
            items.move_to_end(key)
            sizes = self._sizes.setdefault(namespace, {})
            sizes[key] = size
            limit = self._limits.get(namespace, DEFAULT_LIMIT)
            while len(items) > 1 and (len(items) > limit or (budget and sum(sizes.values()) > budget)):
                old_key, _ = items.popitem(last=False)
                sizes.pop(old_key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._sizes.clear()
