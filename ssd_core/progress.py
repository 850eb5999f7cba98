"""The progress-callback convention shared by every long loop."""

from __future__ import annotations

from collections.abc import Callable

# progress(fraction in [0, 1], message)
Progress = Callable[[float, str], None]
OptionalProgress = Progress | None

# The longest a loop goes without calling its progress callback (seconds): a long epoch or scoring pass still
# shows it moves, and the dashboard's Cancel, which takes effect at the next progress call, acts within it.
PROGRESS_SECONDS = 0.5


def report(progress: OptionalProgress, fraction: float, message: str) -> None:
    """Call ``progress`` if there is one, clamping the fraction to [0, 1]."""
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), message)


def scaled(progress: OptionalProgress, start: float, stop: float) -> OptionalProgress:
    """A callback that maps [0, 1] onto [start, stop] of ``progress`` (for sub-steps)."""
    if progress is None:
        return None

    def inner(fraction: float, message: str) -> None:
        report(progress, start + (stop - start) * fraction, message)

    return inner
