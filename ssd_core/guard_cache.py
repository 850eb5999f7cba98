"""The collapse guard's search for a setting that keeps the rest and forgets, kept on disk and, for the shipped
models' classes, shipped.

When automatic α collapses or leaves a class recognised, :meth:`ssd_core.guard.CollapseGuard.fix` probes up to
about 60 settings: 5 s for a Fashion-MNIST class on 2 CPU cores, before that class's first screen and in every
``unlearn`` run of it. Its answer is a function of the model, the importances, the guard's samples and
threshold, the starting (alpha, lambda) and the search's code, so it is kept under a key made of all of them:
in the user cache (``<cache dir>/guard``), and for Fashion-MNIST's classes in the package
(``checkpoints/shipped/guard``, built by ``scripts/build_checkpoints.py``). Any change to ``guard.py`` or
``dampening.py`` changes the key, so an answer of older code is never read.

A stored answer is used only when the guard's check at its setting, run again on this machine, equals the stored
check exactly: one probe instead of the search, and the check the page and the CLI show is always this machine's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from .importance import ImportanceDict, model_fingerprint
from .train import write_atomically

if TYPE_CHECKING:
    from .guard import CollapseGuard, GuardFix

log = logging.getLogger(__name__)

SHIPPED_GUARD = Path(__file__).resolve().parent / "checkpoints" / "shipped" / "guard"
_SEARCH_CODE = (Path(__file__).resolve().parent / "guard.py", Path(__file__).resolve().parent / "dampening.py")


def fix_key(guard: CollapseGuard, model: nn.Module, full: ImportanceDict, forget: ImportanceDict, alpha: float,
            lam: float) -> str:
    """What the search's answer is a function of, hashed: code, model, importances, samples, threshold, start."""
    digest = hashlib.blake2b(digest_size=16)
    for path in _SEARCH_CODE:
        digest.update(path.read_bytes())
    digest.update(model_fingerprint(model).encode())
    for importance in (full, forget):
        for name in sorted(importance):
            digest.update(name.encode())
            digest.update(importance[name].detach().cpu().contiguous().numpy().tobytes())
    for subset in (guard.retain, guard.forget):
        for tensor in (subset.x, subset.y):
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(repr((guard.threshold, guard.forget_limit, float(alpha), float(lam), guard.device.type)).encode())
    return digest.hexdigest()


def cached_fix(guard: CollapseGuard, model: nn.Module, full: ImportanceDict, forget: ImportanceDict, alpha: float,
               lam: float, scratch: nn.Module | None, search: Callable[[], GuardFix]) -> GuardFix:
    """The stored answer for this search when its check holds here (the user cache, then the shipped one), else
    ``search()``'s, then stored in the user cache."""
    from .guard import GuardFix
    from .train import cache_dir

    key = fix_key(guard, model, full, forget, alpha, lam)
    cached = cache_dir() / "guard" / f"{key}.json"
    for path in (cached, SHIPPED_GUARD / f"{key}.json"):
        try:
            stored = GuardFix.from_dict(json.loads(path.read_text()), lam_asked=lam)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a damaged guard search result %s: %s", path, exc)
            continue
        start = time.perf_counter()
        check = guard.check_setting(model, full, forget, stored.alpha, stored.lam, scratch)
        if json.dumps(check.to_dict()) == json.dumps(stored.check.to_dict()):
            return replace(stored, check=check, seconds=time.perf_counter() - start)
        log.info("the stored guard search %s checks otherwise on this machine: searching again", path.name)
    fix = search()
    try:
        save_fix(fix, cached)
    except OSError as exc:
        log.warning("could not write the guard's search result to %s: %s", cached, exc)
    return fix


def save_fix(fix: GuardFix, path: Path) -> None:
    """Write ``fix`` where :func:`cached_fix` reads it, under a temporary name first (a reader never sees half)."""
    write_atomically(path, lambda partial: partial.write_text(json.dumps(fix.to_dict(), indent=1) + "\n"))
