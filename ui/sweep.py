"""Alpha sweep: dampen at every alpha of the ladder and measure forget/retain accuracy (cheap:
test-set logits only, no MIA)."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st
import torch

from ssd_core import figures
from ssd_core.dampening import dampen
from ssd_core.metrics import logits_of

from . import resources
from .resources import Prepared
from .state import ALPHA_VALUES

K_SWEEP = "_alpha_sweep"


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    return None if len(labels) == 0 else float((logits.argmax(1) == labels).float().mean())


def alpha_sweep(prepared: Prepared, lam: float, progress: Callable[[float, str], None] | None = None) -> list[dict[str, Any]]:
    """One row per alpha: forget accuracy (test, or train when there are no forget test images),
    retain-test accuracy and the fraction dampened. Memoised per session."""
    key = (prepared.key, lam)
    memo = st.session_state.get(K_SWEEP)
    if memo is not None and memo[0] == key:
        return memo[1]
    split, device = prepared.split, prepared.device
    use_test = len(split.forget_test) > 0
    forget_subset = split.forget_test if use_test else split.forget_train
    scratch = resources.scratch_model(prepared)
    rows = []
    for i, alpha in enumerate(ALPHA_VALUES):
        if progress is not None:
            progress(i / len(ALPHA_VALUES), f"α = {alpha:g}")
        model, report = dampen(prepared.model, prepared.importances.full, prepared.importances.forget, alpha, lam,
                               with_statistics=False, into=scratch)
        retain_logits = logits_of(model, split.retain_test, device)
        forget_logits = logits_of(model, forget_subset, device)
        rows.append({
            "alpha": alpha,
            "forget_acc": _accuracy(forget_logits, forget_subset.y),
            "retain_acc": _accuracy(retain_logits, split.retain_test.y),
            "fraction_dampened": report.fraction_selected,
            "dampened": report.total_selected,
            "forget_split": "test" if use_test else "train",
        })
    if progress is not None:
        progress(1.0, "done")
    st.session_state[K_SWEEP] = (key, rows)
    return rows


def recommend_alpha(prepared: Prepared, rows: list[dict[str, Any]], tolerance: float = 0.02) -> dict[str, Any] | None:
    """Among alphas keeping retain-test accuracy within ``tolerance`` of the original, the lowest
    forget accuracy; ties go to the highest alpha (fewest parameters touched)."""
    reference = prepared.before_eval.retain_test_acc
    if reference is None:
        return None
    ok = [r for r in rows if r["retain_acc"] is not None and r["forget_acc"] is not None
          and r["retain_acc"] >= reference - tolerance]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["forget_acc"], -r["alpha"]))


def sweep_figure(prepared: Prepared, rows: list[dict[str, Any]], current_alpha: float | None) -> Any:
    forget_split = rows[0]["forget_split"] if rows else "test"
    return figures.alpha_sweep_figure(
        [r["alpha"] for r in rows], [r["forget_acc"] for r in rows], [r["retain_acc"] for r in rows],
        [r["fraction_dampened"] for r in rows], current_alpha, forget_label=f"forget ({forget_split})",
    )


def sweep_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.assign(
        forget_acc=(100 * frame["forget_acc"].astype(float)).round(1),
        retain_acc=(100 * frame["retain_acc"].astype(float)).round(1),
        fraction_dampened=(100 * frame["fraction_dampened"]).round(2),
    )
    return frame.rename(columns={"alpha": "α", "forget_acc": "forget acc. (%)", "retain_acc": "retain-test acc. (%)",
                                 "fraction_dampened": "dampened (%)", "dampened": "dampened (count)",
                                 "forget_split": "forget split"})
