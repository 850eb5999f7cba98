"""Many users at once: a queue for heavy jobs.

Streamlit runs every browser session in its own thread of one process, so the gate is
thread-based and process-wide: :class:`HeavyJobGate` lets at most ``max_concurrent`` heavy jobs
(training, importance, method runs) run at once; the others wait in a first-come, first-served
line and are told their place through ``on_wait`` (so the UI can show "queued, 2 ahead").
:func:`default_gate` is the shared one (``UNLEARNING_LAB_MAX_HEAVY_JOBS``, default 2). Sharing one
computation between sessions that ask for the same thing is :mod:`unlearning_lab.store`'s job.

Typical use::

    with default_gate().slot(on_wait=lambda n: status.update(label=f"Queued: {n - 1} ahead")):
        heavy_work()
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ssd_core.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_HEAVY_JOBS = 2


class QueueTimeout(InputError):
    """A job waited longer than its timeout for a slot (the server is busy)."""


def _env_max_jobs() -> int:
    from ssd_core.settings import settings

    return settings().max_heavy_jobs


def release_memory() -> None:
    """Hand memory freed by a finished heavy job back to the operating system.

    glibc keeps freed heap pages for reuse, so after decoding an upload or training a model a
    long-running server would keep its peak footprint for good; ``malloc_trim(0)`` returns what
    is free (a few milliseconds). Elsewhere (no glibc) it does nothing.
    """
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        try:
            _MALLOC_TRIM(0)
        except Exception:  # noqa: BLE001 - only housekeeping
            pass


_MALLOC_TRIM: Any = None


class HeavyJobGate:
    """At most ``max_concurrent`` heavy jobs at once; the rest wait in a FIFO line.

    Slots are re-entrant per thread: a job that already holds a slot (a method run that computes
    importances) does not queue again, so nesting never deadlocks.
    """

    def __init__(self, max_concurrent: int | None = None) -> None:
        if max_concurrent is None:
            max_concurrent = _env_max_jobs()
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a whole number >= 1, not {max_concurrent!r}.")
        self.max_concurrent = max_concurrent
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._line: list[int] = []  # tickets of waiting jobs, first in line first
        self._tickets = itertools.count()
        self._held = threading.local()

    @property
    def active(self) -> int:
        """How many jobs hold a slot now."""
        with self._cond:
            return self._active

    @property
    def waiting(self) -> int:
        """How many jobs wait in line now."""
        with self._cond:
            return len(self._line)

    @contextmanager
    def slot(
        self,
        on_wait: Callable[[int], None] | None = None,
        *,
        timeout: float | None = None,
        poll_seconds: float = 0.5,
    ) -> Iterator[None]:
        """Hold one slot for the ``with`` block, waiting in line first if all are taken.

        While waiting, ``on_wait(position)`` is called from this thread each time the place in line
        changes (1 = next to start; ``position - 1`` jobs are ahead). It is called outside the
        gate's lock, and if it raises (e.g. the user left the page) the job leaves the line.
        With ``timeout`` seconds and no slot yet, :class:`QueueTimeout` is raised.
        """
        depth = getattr(self._held, "depth", 0)
        if depth:  # already inside a slot on this thread
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return

        self._acquire(on_wait, timeout, poll_seconds)
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._active -= 1
                idle = self._active == 0
                self._cond.notify_all()
            if idle:
                release_memory()

    def _acquire(self, on_wait: Callable[[int], None] | None, timeout: float | None, poll_seconds: float) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._line and self._active < self.max_concurrent:
                self._active += 1
                return
            ticket = next(self._tickets)
            self._line.append(ticket)
        reported = None
        try:
            while True:
                with self._cond:
                    if self._line[0] == ticket and self._active < self.max_concurrent:
                        self._line.pop(0)
                        self._active += 1
                        self._cond.notify_all()  # the next in line moves up
                        return
                    position = self._line.index(ticket) + 1
                    if position == reported or on_wait is None:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise QueueTimeout(
                                "The server is busy with other users' jobs; please try again in a minute."
                            )
                        wait = poll_seconds if remaining is None else max(0.0, min(poll_seconds, remaining))
                        self._cond.wait(wait)
                        continue
                reported = position
                on_wait(position)  # outside the lock: it may update a UI, or raise
        except BaseException:
            with self._cond:
                if ticket in self._line:
                    self._line.remove(ticket)
                    self._cond.notify_all()
            raise


_default_gate: HeavyJobGate | None = None
_default_lock = threading.Lock()


def default_gate() -> HeavyJobGate:
    """The process-wide gate (``UNLEARNING_LAB_MAX_HEAVY_JOBS``, default 2), created on first use."""
    global _default_gate
    with _default_lock:
        if _default_gate is None:
            _default_gate = HeavyJobGate()
        return _default_gate
