"""The audit as plain text: the verdict table the CLI prints (no printing here)."""

from __future__ import annotations

from typing import Any

TESTS = {
    "output": "at the output",
    "features": "in the features",
    "attack": "against the per-example attack",
    "relearning": "against relearning",
    "retain_relearning": "against retain-only fine-tuning",
    "representation": "inside (CKA to retrained)",
}


def _mark(forgotten: bool | None) -> str:
    return {True: "forgotten", False: "NOT forgotten", None: "no verdict"}[forgotten]


def audit_summary(result: dict[str, Any]) -> str:
    """Verdict rows per method, then the seed intervals and the notes."""
    audit = result["audit"]
    lines = [f"Audit of {result['dataset']}/{result['model']}, forget {result['forget']['description']}",
             f"(reference: a model retrained without the forget set, seed {result['seed']}; "
             f"{audit['shadows']['count'] if audit['shadows'] else 0} LiRA shadow models)"]
    for method, rows in audit["verdicts"].items():
        lines.append("")
        lines.append(f"{method}:")
        for row in rows:
            lines.append(f"  {TESTS[row['test']]:<32} {_mark(row['forgotten']):<14} {row['sentence']}")
    for kind, words in (("seeds", "seeds"), ("train_seeds", "original models (training seeds)")):
        for method, metrics in result.get(kind, {}).items():
            lines.append("")
            lines.append(f"{method} over {len(next(iter(metrics.values()))['values'])} {words} (mean [95% interval]):")
            for name, interval in metrics.items():
                if interval["mean"] is not None:
                    lines.append(f"  {name:<28} {interval['mean']:.4f} [{interval['lo']:.4f}, {interval['hi']:.4f}]")
    for note in audit["notes"]:
        lines.append("")
        lines.append(f"Note: {note}")
    seconds = result["seconds"]
    lines.append("")
    lines.append(f"Took {seconds['total']:.1f} s (audit {seconds['audit']:.1f} s).")
    return "\n".join(lines)
