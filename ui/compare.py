"""The Compare page's parts: the results table (gaps to the retrained model, over-forgetting), its
JSON, and the same methods over several seeds with 95% intervals. Running and caching the methods
is :mod:`ui.method_runs`, shared with Instances and SAPS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from ssd_core.data import ForgetSplit
from ssd_core.metrics import ACCURACY_KEYS, gap_to_retrain, is_over_forgetting

from .method_runs import MAX_RESULTS, MethodRun, gate_slot, queue_note, result_key
from .resources import Prepared
from .state import RunSetup

if TYPE_CHECKING:
    import pandas as pd

GOLD = "retrain"
METRIC_KEYS = (*ACCURACY_KEYS, "mia", "zrf")
METRIC_LABELS = {
    "retain_test_acc": "retain test", "forget_test_acc": "forget test", "retain_train_acc": "retain train",
    "forget_train_acc": "forget train", "test_acc": "test", "mia": "MIA", "zrf": "ZRF",
}
OVER_FORGETTING = "⚠ over-forgetting"
K_SEED_RESULTS = "_compare_seed_results"


# ---------------------------------------------------------------------------------------------
# The table


AUDIT_COLUMNS = ("KL to retrain", "JS to retrain", "activation distance")


def distance_columns(run: MethodRun, reference: MethodRun, split: ForgetSplit) -> dict[str, float | None]:
    """The audit's distance to the retrained model on forget-test (forget-train for instance
    requests), from the logits the runs already hold (``ssd_core.audit.distance``)."""
    from ssd_core.audit.distance import distance

    subset = split.forget_test if len(split.forget_test) else split.forget_train
    on_train = not len(split.forget_test)
    logits = (run.outputs.train_logits if on_train else run.outputs.test_logits)[subset.indices]
    gold = (reference.outputs.train_logits if on_train else reference.outputs.test_logits)[subset.indices]
    found = distance(logits, gold)
    return dict(zip(AUDIT_COLUMNS, (found.kl, found.js, found.activation), strict=True))


def loaded_retrain_note(runs: dict[str, MethodRun]) -> str | None:
    """One sentence when the retrain row's model was read from disk instead of trained now."""
    run = runs.get(GOLD)
    if run is None or run.diagnostics.get("source", "trained") == "trained":
        return None
    where = "shipped with the lab" if run.diagnostics["source"] == "shipped" else "retrained earlier and cached"
    recorded = run.diagnostics.get("recorded_training_s")
    took = f", trained in {recorded:.0f} s" if recorded else ""
    return (f"retrain: the model trained without the forget set was read from disk ({where}{took}); its seconds "
            "are the read, not the training.")


def comparison_table(runs: dict[str, MethodRun], gold: str = GOLD, split: ForgetSplit | None = None) -> pd.DataFrame:
    """One row per method: metrics (fractions), MIA, ZRF, seconds, data touched, the gap to
    retrain for each metric, the over-forgetting flag (empty when there is no retrain row) and,
    given the ``split``, the audit's distance to retrain (KL, JS, activation distance)."""
    reference = runs.get(gold)
    rows = []
    for method, run in runs.items():
        summary = run.evaluation.summary()
        row: dict[str, Any] = {"method": method}
        row.update({METRIC_LABELS[k]: summary[k] for k in METRIC_KEYS})
        row["seconds"] = round(run.total_seconds, 3)
        row["data touched"] = run.data_touched
        gaps = gap_to_retrain(run.evaluation, reference.evaluation) if reference is not None else {}
        row.update({f"gap {METRIC_LABELS[k]}": gaps.get(k) for k in METRIC_KEYS})
        row["flag"] = (OVER_FORGETTING if reference is not None and is_over_forgetting(run.evaluation, reference.evaluation)
                       else "")
        if split is not None and reference is not None:
            row.update(distance_columns(run, reference, split))
        rows.append(row)
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)


def table_json(table: pd.DataFrame, runs: dict[str, MethodRun], setup: RunSetup) -> str:
    payload = {
        "setup": {"dataset": setup.dataset, "model": setup.model, "request": setup.request.to_dict(), "seed": setup.seed},
        "rows": json.loads(table.to_json(orient="records")),
        "configs": {m: r.config for m, r in runs.items()},
        "seconds": {m: r.seconds for m, r in runs.items()},
        "per_class_acc": {m: r.evaluation.per_class_acc for m, r in runs.items()},
        "diagnostics": {m: r.diagnostics for m, r in runs.items()},
    }
    return json.dumps(payload, indent=2, default=str)


def seed_key(setup: RunSetup, method: str, config: dict[str, Any], seeds: int) -> tuple:
    return (*result_key(setup, method, {k: v for k, v in config.items() if k != "seed"}), seeds)


def cached_seed_runs(setup: RunSetup, method: str, config: dict[str, Any], seeds: int) -> dict | None:
    return st.session_state.setdefault(K_SEED_RESULTS, {}).get(seed_key(setup, method, config, seeds))


def run_seeds_cached(prepared: Prepared, method: str, config: dict[str, Any], seeds: int,
                     progress: Callable[[float, str], None] | None = None,
                     on_wait: Callable[[str], None] | None = None) -> dict:
    """``method`` over seeds 0..S-1, each against its own retrained model (ssd_core.audit.seed_runs):
    metric -> Interval, kept for the session."""
    from ssd_core.audit import seed_runs

    results = st.session_state.setdefault(K_SEED_RESULTS, {})
    key = seed_key(prepared.setup, method, config, seeds)
    if key not in results:
        options = {k: v for k, v in config.items() if k != "seed"}
        with gate_slot(on_wait or queue_note(progress)):
            results[key] = seed_runs(method, prepared.model, prepared.split, prepared.setup.model, params=options,
                                     seeds=seeds, device=prepared.device, progress=progress)
        while len(results) > MAX_RESULTS:
            results.pop(next(iter(results)))
    return results[key]


SEED_LABELS = {"forget_test_acc": "forget test", "retain_test_acc": "retain test", "forget_train_acc": "forget train",
               "mia": "MIA", "js_forget_test": "JS to retrain (forget test)",
               "retrained_forget_test_acc": "retrain: forget test", "retrained_retain_test_acc": "retrain: retain test"}


def interval_table(per_method: dict[str, dict]) -> pd.DataFrame:
    """One row per method: each metric as 'mean [low, high]' (95% interval over seeds)."""
    rows = []
    for method, metrics in per_method.items():
        row: dict[str, Any] = {"method": method}
        for name, label in SEED_LABELS.items():
            found = metrics.get(name)
            if found is None or found.mean is None:
                row[label] = "n/a"
            elif "acc" in name or name == "mia":
                row[label] = f"{100 * found.mean:.1f}% [{100 * found.lo:.1f}, {100 * found.hi:.1f}]"
            else:
                row[label] = f"{found.mean:.4f} [{found.lo:.4f}, {found.hi:.4f}]"
        rows.append(row)
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)
