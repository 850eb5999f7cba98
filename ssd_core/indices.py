"""Numbers and index lists typed by people ('1,5,9-12', '1e-3'): one set of parsers (and one
index formatter) for the CLI, method options, the dashboard and shared links.

Only ASCII digits count as digits ('³'.isdigit() is true in Python, but int('³') fails), and a
list's size is checked before it is expanded, so '0-999999999' is refused in microseconds instead
of filling the memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from .errors import InputError

MAX_INDICES = 100_000  # the most indices one request may list
_DIGITS = frozenset("0123456789")


def is_whole_number(text: str) -> bool:
    """True for a non-empty string of ASCII digits (no sign, no spaces, no other scripts)."""
    return bool(text) and all(ch in _DIGITS for ch in text)


def parse_whole_number(text: str, what: str = "value", *, maximum: int | None = None) -> int:
    """``text`` as a non-negative int, or InputError naming ``what``."""
    text = str(text).strip()
    if not is_whole_number(text) or len(text) > 19:
        raise InputError(f"The {what} must be a whole number of at least 0 written with the digits 0-9.")
    value = int(text)
    if maximum is not None and value > maximum:
        raise InputError(f"The {what} must be at most {maximum:,}.")
    return value


_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[+-]?[0-9]+")


def parse_int(text: object, what: str = "value") -> int:
    """An int written with ASCII digits (and an optional sign), or InputError naming ``what``."""
    if isinstance(text, bool):
        raise InputError(f"The {what} must be a whole number, not {text}.")
    if isinstance(text, int):
        return text
    raw = str(text).strip()
    if not _INT.fullmatch(raw) or len(raw) > 19:
        shown = raw if len(raw) <= 20 else raw[:19] + "…"
        raise InputError(f"The {what} must be a whole number written with the digits 0-9, not '{shown}'.")
    return int(raw)


def parse_float(text: object, what: str = "value") -> float:
    """A finite float written with ASCII digits ('0.5', '-3', '1e-3'), or InputError naming ``what``."""
    if isinstance(text, bool):
        raise InputError(f"The {what} must be a number, not {text}.")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        if not _FLOAT.fullmatch(raw) or len(raw) > 40:
            shown = raw if len(raw) <= 20 else raw[:19] + "…"
            raise InputError(f"The {what} must be a number like 0.5 or 1e-3, not '{shown}'.")
        value = float(raw)
    if not math.isfinite(value):
        raise InputError(f"The {what} must be a finite number.")
    return value


def parse_indices(text: str | Iterable[int], *, limit: int = MAX_INDICES) -> tuple[int, ...]:
    """'1,5,9-12' (spaces allowed) or a sequence of ints -> a sorted tuple of unique indices.

    Raises InputError with one sentence for anything else: a negative or non-ASCII number, a
    reversed range, or more than ``limit`` indices (counted before expanding any range).
    """
    if not isinstance(text, str):
        given = {int(i) for i in text}
        if any(v < 0 for v in given):
            raise InputError("Sample indices cannot be negative.")
        if len(given) > limit:
            raise InputError(f"At most {limit:,} sample indices can be listed; got {len(given):,}.")
        return tuple(sorted(given))
    ranges: list[tuple[int, int]] = []
    total = 0
    for raw in text.split(","):
        part = raw.strip().replace(" ", "")
        if not part:
            continue
        lo_text, sep, hi_text = part.partition("-")
        if not is_whole_number(lo_text) or (sep and not is_whole_number(hi_text)) or len(part) > 41:
            shown = part if len(part) <= 20 else part[:19] + "…"
            raise InputError(f"'{shown}' is not a sample index; use numbers like 1,5,9 or 3-7.")
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
        if hi < lo:
            raise InputError(f"The range {lo}-{hi} runs backwards; write it as {hi}-{lo}.")
        total += hi - lo + 1
        if total > limit:
            raise InputError(f"At most {limit:,} sample indices can be listed at once.")
        ranges.append((lo, hi))
    values: set[int] = set()
    for lo, hi in ranges:
        values.update(range(lo, hi + 1))
    return tuple(sorted(values))


def format_indices(indices: Iterable[int]) -> str:
    """Sorted indices as compact ranges: (0, 1, 2, 5, 7, 8) -> '0-2,5,7-8'."""
    values = sorted({int(i) for i in indices})
    parts: list[str] = []
    start = prev = None
    for value in values:
        if start is None:
            start = prev = value
        elif prev is not None and value == prev + 1:
            prev = value
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = value
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(parts)
