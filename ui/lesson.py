"""The Lesson page's Streamlit part: step 8's relearning curves (the dampened model's and the retrained
model's), measured inside the heavy-job gate and kept per setting. The steps, tasks and checks are
:mod:`unlearning_lab.lesson`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from .method_runs import gate_slot, queue_note

if TYPE_CHECKING:
    from .resources import Prepared


K_LESSON_RELEARN = "_lesson_relearn"


def lesson_relearn(prepared: Prepared, live: Any, progress: Callable[[float, str], None] | None):
    """(dampened model's, retrained model's) relearning curves for the Lesson, kept per setting."""
    from ssd_core.audit import retrained_reference
    from ssd_core.audit.relearn import pick_relearn_samples, relearn_curve

    memo = st.session_state.setdefault(K_LESSON_RELEARN, {})
    key = _lesson_key(prepared, live)
    if key not in memo:
        split = prepared.split
        samples = pick_relearn_samples(split.forget_train, seed=prepared.setup.seed)
        with gate_slot(queue_note(progress)):
            gold_key = ("retrained", prepared.setup.split_key(), prepared.setup.seed)
            if gold_key not in memo:
                reference = retrained_reference(split, prepared.setup.model, seed=prepared.setup.seed,
                                                device=prepared.device, progress=progress).model.to(prepared.device)
                memo[gold_key] = relearn_curve(reference, samples, split.forget_test, device=prepared.device)
            memo[key] = (relearn_curve(live.model, samples, split.forget_test, device=prepared.device), memo[gold_key])
        while len(memo) > 16:
            memo.pop(next(iter(memo)))
    return memo[key]


def lesson_embedding(prepared: Prepared, live: Any, method: str = "pca") -> dict[str, Any]:
    """The picture of hiding for the Lesson: original, the dampened model now and the retrained model, each one's
    penultimate features in 2-D (:func:`ssd_core.audit.layers.embeddings`). The original's and the retrained
    model's panels do not depend on α or λ, so they are computed once per request; a new setting computes only
    its own panel. ``method``: "pca" or "umap"."""
    from ssd_core.audit import retrained_reference
    from ssd_core.audit.layers import embeddings

    memo = st.session_state.setdefault(K_LESSON_RELEARN, {})
    key = ("embedding", method, *_lesson_key(prepared, live))
    if key not in memo:
        fixed_key = ("embedding-fixed", method, prepared.setup.split_key(), prepared.setup.seed)
        if fixed_key not in memo:
            reference = retrained_reference(prepared.split, prepared.setup.model, seed=prepared.setup.seed,
                                            device=prepared.device).model.to(prepared.device)
            memo[fixed_key] = embeddings({"original": prepared.model, "retrain": reference}, prepared.split,
                                         prepared.setup.seed, prepared.device, method)
        now = embeddings({"unlearned (now)": live.model}, prepared.split, prepared.setup.seed, prepared.device, method)
        fixed = memo[fixed_key]
        memo[key] = {name: e.to_dict() for name, e in
                     (("original", fixed["original"]), *now.items(), ("retrain", fixed["retrain"]))}
    return memo[key]


def _lesson_key(prepared: Prepared, live: Any) -> tuple:
    return (prepared.setup.split_key(), prepared.setup.seed, float(live.alpha), float(live.lam))


def lesson_relearn_known(prepared: Prepared, live: Any) -> bool:
    """Whether :func:`lesson_relearn` has this setting already (no status box needed)."""
    return _lesson_key(prepared, live) in st.session_state.get(K_LESSON_RELEARN, {})
