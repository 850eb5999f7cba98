"""Glue for the Audit page: run the library's audit on the prepared run (inside the heavy-job
gate, with progress) and keep each result for the session, keyed by what determines it.

The numbers come from ``ssd_core.audit.runner.audit_request``, the function behind
``python -m ssd_core audit``, called with the same arguments, so the page and the CLI agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from ssd_core.audit import AuditConfig
from ssd_core.audit.runner import audit_request
from ssd_core.audit.text import TESTS
from unlearning_lab.text import duration

from .method_runs import gate_slot
from .resources import Prepared
from .state import RunSetup

if TYPE_CHECKING:
    import pandas as pd

K_AUDITS = "_audit_results"
MAX_AUDITS = 8
VERDICT_MARKS = {True: "✓ forgotten", False: "✗ not forgotten", None: "– no verdict"}


@dataclass(frozen=True)
class AuditChoice:
    """What the Audit page's controls chose: with the run setup, what an audit result is keyed by."""

    methods: tuple[str, ...]
    seeds: int = 0  # S >= 2: every number over S seeds with a 95% interval
    train_seeds: bool = False  # the seeds vary the original model too (the CLI's --train-seeds), not only the unlearning
    shadows: int | None = None  # LiRA shadow models; None: the dataset's plan
    alpha_lam: tuple[float, float] | None = None  # the session's SSD method's setting (see method_options)
    embedding: str = "pca"  # the picture of hiding: "pca" or "umap"


def method_options(setup: RunSetup, choice: AuditChoice) -> dict[str, dict]:
    """Each method's options: its defaults, except the session's SSD method, which runs at the Unlearn page's
    α and λ (``choice.alpha_lam``) so the audit audits the SSD on screen."""
    options: dict[str, dict] = {m: {} for m in choice.methods}
    if choice.alpha_lam is not None and setup.method in options:
        options[setup.method] = {"alpha": choice.alpha_lam[0], "lam": choice.alpha_lam[1]}
    return options


def audit_key(setup: RunSetup, choice: AuditChoice) -> tuple:
    return (setup.split_key(), choice, repr(method_options(setup, choice)))


def cached_audit(setup: RunSetup, choice: AuditChoice) -> dict[str, Any] | None:
    return st.session_state.setdefault(K_AUDITS, {}).get(audit_key(setup, choice))


def run_audit_cached(prepared: Prepared, choice: AuditChoice, progress: Callable[[float, str], None],
                     on_wait: Callable[[str], None]) -> dict[str, Any]:
    """The session's audit for (setup, choice), computed on first use, with the arguments the CLI would pass."""
    results = st.session_state.setdefault(K_AUDITS, {})
    key = audit_key(prepared.setup, choice)
    if key not in results:
        with gate_slot(on_wait):
            results[key] = audit_request(
                prepared.model, prepared.split, prepared.setup.model, method_options(prepared.setup, choice),
                seed=prepared.setup.seed, device=prepared.device, shadows=choice.shadows,
                seeds=0 if choice.train_seeds else choice.seeds, train_seeds=choice.seeds if choice.train_seeds else 0,
                config=AuditConfig(embedding=choice.embedding), progress=progress,
                keep_original=not prepared.setup.is_session_local)  # an upload's logits never go to the disk
        while len(results) > MAX_AUDITS:
            results.pop(next(iter(results)))
    return results[key]


def verdict_value(test: str, value: float | None) -> str:
    """A verdict row's number in its own unit: accuracy in %, LiRA AUC, relearning in steps."""
    if value is None:
        return "n/a"
    if test in ("output", "features", "retain_relearning"):
        return f"{100 * value:.1f}%"
    if test == "attack":
        return f"AUC {value:.3f}"
    if test == "representation":
        return f"CKA {value:.3f}"
    return f"{value:.0f} steps"


def verdict_table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per (method, test): the verdict, the method's number and the retrained model's."""
    rows = []
    for method, verdicts in result["audit"]["verdicts"].items():
        for row in verdicts:
            rows.append({"method": method, "forgotten …": TESTS[row["test"]], "verdict": VERDICT_MARKS[row["forgotten"]],
                         "this method": verdict_value(row["test"], row["value"]),
                         "retrained": verdict_value(row["test"], row["retrained"])})
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)


def verdict_sentences(result: dict[str, Any]) -> dict[str, list[str]]:
    """The sentence behind each verdict row, per method."""
    return {method: [row["sentence"] for row in rows] for method, rows in result["audit"]["verdicts"].items()}


def numbers_table(result: dict[str, Any]) -> pd.DataFrame:
    """Every model's audit numbers side by side (original, each method, retrained)."""
    audit = result["audit"]
    models = {"original": audit["original"], **audit["unlearned"], "retrain": audit["retrained"]}
    rows = []
    for name, m in models.items():
        lira = m["lira"] or {}
        relearn = m["relearn"] or {}
        rows.append({
            "model": name,
            "forget test": m["forget_test_acc"],
            "retain test": m["retain_test_acc"],
            "KL to retrain (forget test)": m["distance"]["forget_test"]["kl"],
            "JS to retrain (forget test)": m["distance"]["forget_test"]["js"],
            "total variation to retrain (forget test)": m["distance"]["forget_test"].get("total_variation"),
            "total variation to retrain (retain test)": m["distance"]["retain_test"].get("total_variation"),
            "activation distance (forget test)": m["distance"]["forget_test"]["activation"],
            "probe on forgotten class": m["probe_forget_acc"],
            "CKA to original (forget, features)": m["layers"][-1]["cka_original_forget"] if m.get("layers") else None,
            "CKA to retrain (forget, features)": m["layers"][-1]["cka_retrained_forget"] if m.get("layers") else None,
            "steps to relearn 50%": relearn.get("steps_to_target"),
            "LiRA AUC": lira.get("auc"),
            "LiRA TPR @1% FPR": lira.get("tpr_at_1_fpr"),
            "LiRA TPR @5% FPR": lira.get("tpr_at_5_fpr"),
        })
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)


def seeds_table(result: dict[str, Any]) -> pd.DataFrame:
    """Mean and 95% interval per method and metric (empty without seeds)."""
    rows = []
    spreads = [(method, metrics) for kind in ("seeds", "train_seeds") for method, metrics in result.get(kind, {}).items()]
    for method, metrics in spreads:
        for name, interval in metrics.items():
            if interval["mean"] is None:
                continue
            rows.append({"method": method, "metric": name, "mean": interval["mean"], "95% low": interval["lo"],
                         "95% high": interval["hi"], "seeds": len(interval["values"])})
    import pandas as pd  # on first use: the first screen does not need pandas (ui/startup.py)

    return pd.DataFrame(rows)


def to_json(result: dict[str, Any]) -> str:
    """The audit as the CLI's ``--json`` writes it (live objects dropped)."""
    import json

    return json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2)


def cli_args(setup: RunSetup, choice: AuditChoice) -> str:
    """The ``python -m ssd_core audit`` arguments for the same audit."""
    r = setup.request
    forget = {"class": f"--forget-class {r.target}", "subclass": f"--forget-subclass {r.target}",
              "random": f"--forget-random {r.k}", "indices": f"--forget-indices {','.join(map(str, r.indices or ()))}"}
    parts = [f"--dataset {setup.dataset}", f"--model {setup.model}", forget[r.kind], f"--seed {setup.seed}"]
    parts += [f"--method {m}" for m in choice.methods]
    if choice.alpha_lam is not None and setup.method in choice.methods:
        parts += [f"--alpha {choice.alpha_lam[0]:.10g}", f"--lambda {choice.alpha_lam[1]:g}"]
    if choice.seeds > 1:
        parts.append(f"--{'train-seeds' if choice.train_seeds else 'seeds'} {choice.seeds}")
    if choice.shadows is not None:
        parts.append(f"--shadows {choice.shadows}")
    if choice.embedding != "pca":
        parts.append(f"--embedding {choice.embedding}")
    return " ".join(parts)


def cost_sentence(prepared: Prepared, choice: AuditChoice, plan: Any) -> str:
    """What the audit will train before it runs, with times estimated from this machine's measured
    training speed: the retrained reference (shipped, cached or trained once) and the LiRA shadows."""
    from ssd_core.audit import reference_source
    from ssd_core.audit.lira import find_shadows
    from ssd_core.train import TrainConfig

    from .resources import image_seconds

    setup = prepared.setup
    seeds = choice.seeds
    shadows = plan.count if choice.shadows is None else choice.shadows
    parts: list[str] = []

    epochs = TrainConfig.default(prepared.dataset.name, setup.model, setup.seed).epochs
    source = reference_source(prepared.split, setup.model, seed=setup.seed)
    if source is not None:
        parts.append(f"The retrained reference is {'cached' if source == 'cache' else source} (no training).")
    else:
        seconds = image_seconds(setup) * epochs * len(prepared.split.retain_train)
        parts.append(f"The retrained reference trains once (about {duration(seconds)} here, then cached).")
    if seeds > 1 and choice.train_seeds:
        from ssd_core.train import find_checkpoint

        extra = range(1, seeds)
        missing = sum(find_checkpoint(prepared.dataset, setup.model, s) is None for s in extra)
        missing += sum(reference_source(prepared.split, setup.model, seed=s) is None for s in extra)
        each = image_seconds(setup) * epochs * len(prepared.dataset.train_y)
        parts.append(f"{seeds} training seeds: {seeds - 1} more original models, each with its own retrained reference"
                     + (f"; {missing} of them train first (about {duration(each * missing)} here, then cached)."
                        if missing else ", all ready (no training)."))
    elif seeds > 1:
        parts.append(f"{seeds} seeds retrain it {seeds - 1} more times.")
    if shadows == 0:
        parts.append("No LiRA row: the per-example attack is skipped.")
    elif find_shadows(prepared.dataset, setup.model, count=shadows) is not None:
        parts.append(f"LiRA uses {shadows} ready shadow models (no training).")
    else:
        each = image_seconds(setup) * int(plan.config["epochs"]) * len(prepared.dataset.train_y) / 2
        parts.append(f"LiRA first trains {shadows} shadow models (about {duration(each * shadows)} here, then cached). "
                     + plan.note)
    return " ".join(parts)

