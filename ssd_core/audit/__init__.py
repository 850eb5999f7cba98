"""Did it really forget? An audit of an unlearning result against the retrained model.

One signature: ``audit(original, unlearned, split, reference) -> AuditReport``. For each model
(original, every unlearned one, the retrained reference) it measures:

- output: forget-test and retain-test accuracy, and the distance of its outputs to the
  retrained model's (KL, JS, activation distance; :mod:`.distance`);
- features: a linear probe on the penultimate features, accuracy on the forget class's
  held-out images (:mod:`.probe`);
- relearning: forget-test accuracy while fine-tuning on k forget samples, and on retain samples only
  (:mod:`.relearn`);
- layers: linear CKA to the original and to the retrained model and a linear probe at every block, and a
  2-D picture of the penultimate features (:mod:`.layers`);
- per-example membership: offline LiRA with shadow models (:mod:`.lira`), when shadows exist.

Then a verdict for each unlearned model, four rows, each with its number and the retrained
model's: forgotten at the output, in the features, against the per-example attack, against
relearning (thresholds below, documented in the README). Seeds: :mod:`.seeds`. No model passed in
is modified (every fine-tuning works on a copy; features are read with a hook that is removed).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..data import ForgetSplit
from ..metrics import SplitOutputs, evaluate_outputs, split_outputs
from ..models import get_spec
from ..original_outputs import original_outputs
from ..progress import OptionalProgress, report, scaled
from .distance import DISTANCE_SUBSETS, Distance, distance, per_class_js, per_class_tv
from .layers import Embedding, LayerRow, class_target, embedding, layer_rows, layer_samples, representation
from .lira import LIRA_SHADOWS, MembershipResult, ShadowSet, build_shadows, find_shadows, membership, shadow_plan
from .probe import probe_accuracy
from .reference import reference_source, retrained_reference
from .relearn import RELEARN_K, RELEARN_STEPS, RETAIN_RELEARN_K, RelearnCurve, pick_relearn_samples, relearn_curve
from .seeds import SEEDS, Interval, interval, seed_runs

# Verdict thresholds: how far above the retrained model a number may be and still count as forgotten.
OUTPUT_SLACK = 0.05  # forget-test accuracy, fraction
FEATURE_SLACK = 0.15  # probe accuracy on the forget class: above this margin is "output-only forgetting"
ATTACK_SLACK = 0.05  # LiRA AUC
RELEARN_FRACTION = 0.5  # relearning must take at least half the retrained model's steps
LEAKY_ORIGINAL_AUC = 0.6  # below this the original itself leaks little: the attack row says little

__all__ = [
    "AuditConfig", "AuditReport", "ModelAudit", "Verdict", "audit", "audit_models", "reference_source", "retrained_reference",
    "build_shadows", "find_shadows", "shadow_plan", "membership", "ShadowSet", "MembershipResult", "seed_runs", "interval",
    "Interval", "Distance", "RelearnCurve", "SEEDS", "LIRA_SHADOWS",
]


@dataclass(frozen=True)
class AuditConfig:
    """What the audit measures and how much data it uses."""

    relearn_k: int = RELEARN_K  # forget samples to fine-tune on
    relearn_steps: int = RELEARN_STEPS
    seed: int = 0  # which forget samples relearning uses
    probe_max_train: int | None = 2000  # probe fitted on a seeded sample of at most this many training images
    feature_layer: str = ""  # module path of the classifier head ("" = the last nn.Linear)
    max_non_members: int | None = None  # LiRA non-members (None: all matched test images)
    layers: bool = True  # CKA and probes per block, and the embedding (:mod:`.layers`)
    embedding: str = "pca"  # how the picture of hiding flattens the features: "pca" or "umap" (needs umap-learn)


@dataclass
class ModelAudit:
    """Every audit number for one model."""

    name: str
    forget_test_acc: float | None
    retain_test_acc: float | None
    forget_train_acc: float | None
    distance: dict[str, Distance]  # subset -> distance to the retrained model
    per_class_js: list[float | None]  # test split, by true class
    probe_forget_acc: float | None
    relearn: RelearnCurve | None
    lira: MembershipResult | None
    per_class_tv: list[float | None] = field(default_factory=list)  # total variation, test split, by true class
    retain_relearn: RelearnCurve | None = None  # forget-test accuracy while fine-tuned on retain images only
    layers: list[LayerRow] = field(default_factory=list)  # per block: CKA to the original and retrained, probe
    embedding: Embedding | None = None  # the penultimate features in 2-D (PCA or UMAP)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["distance"] = {k: v.to_dict() for k, v in self.distance.items()}
        return out


@dataclass(frozen=True)
class Verdict:
    """One row of the verdict table."""

    test: str  # "output", "features", "attack", "relearning"
    forgotten: bool | None  # None: not measurable for this request (e.g. no shadows)
    value: float | None
    retrained: float | None
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AuditReport:
    """Audit of one or more unlearned models of one request."""

    request: dict
    original: ModelAudit
    retrained: ModelAudit
    unlearned: dict[str, ModelAudit]
    verdicts: dict[str, list[Verdict]]
    shadows: dict | None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe_random: float | None = None  # the probe on a randomly initialised model's features: the floor
    probe_random_layers: dict[str, float | None] = field(default_factory=dict)  # the same floor at every block

    def to_dict(self) -> dict:
        return {
            "request": self.request,
            "original": self.original.to_dict(),
            "retrained": self.retrained.to_dict(),
            "unlearned": {k: v.to_dict() for k, v in self.unlearned.items()},
            "verdicts": {k: [v.to_dict() for v in rows] for k, rows in self.verdicts.items()},
            "shadows": self.shadows,
            "probe_random": self.probe_random,
            "probe_random_layers": self.probe_random_layers,
            "seconds": self.seconds,
            "notes": self.notes,
        }


def random_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (seeded): the probe's floor."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return fresh.eval()


def _probe_train(split: ForgetSplit, limit: int | None, seed: int):
    train = split.train
    if limit is None or len(train) <= limit:
        return train
    generator = torch.Generator().manual_seed(seed)
    return train.select(torch.randperm(len(train), generator=generator)[:limit].sort().values)


def _subset_logits(outputs: SplitOutputs, split: ForgetSplit, subset: str) -> torch.Tensor:
    """The rows of one subset (forget/retain x train/test) in a model's logits on every image."""
    every = outputs.train_logits if subset.endswith("train") else outputs.test_logits
    return every[getattr(split, subset).indices]


def _audit_one(name: str, model: nn.Module, outputs: SplitOutputs, split: ForgetSplit, reference: SplitOutputs,
               config: AuditConfig, shadows: ShadowSet | None, device: torch.device | str,
               progress: OptionalProgress = None) -> ModelAudit:
    """Every number of one model; ``outputs`` (its logits on every image, one pass) feed its accuracies, its
    distances to the retrained model (``reference``, the same for it) and LiRA."""
    # A progress call between the steps (under 0.5 s apart on digits here): the dashboard's Cancel acts there.
    result = evaluate_outputs(outputs, split, with_mia=False)
    distances = {subset: distance(_subset_logits(outputs, split, subset), _subset_logits(reference, split, subset))
                 for subset in DISTANCE_SUBSETS}
    test = split.test
    class_js = per_class_js(outputs.test_logits, reference.test_logits, test.y, split.dataset.num_classes)
    class_tv = per_class_tv(outputs.test_logits, reference.test_logits, test.y, split.dataset.num_classes)
    whole = len(split.forget_test) > 0
    report(progress, 0.2, f"auditing {name}: the probe")
    probe = probe_accuracy(model, _probe_train(split, config.probe_max_train, config.seed), split.forget_test,
                           split.dataset.num_classes, device, config.feature_layer) if whole else None
    relearn = retain_relearn = None
    if whole:
        samples = pick_relearn_samples(split.forget_train, config.relearn_k, config.seed)
        relearn = relearn_curve(model, samples, split.forget_test, steps=config.relearn_steps, device=device,
                                progress=scaled(progress, 0.4, 0.6))
        retain = pick_relearn_samples(split.retain_train, RETAIN_RELEARN_K, config.seed + 1)
        retain_relearn = relearn_curve(model, retain, split.forget_test, steps=config.relearn_steps, device=device,
                                       progress=scaled(progress, 0.6, 0.8))
    report(progress, 0.8, f"auditing {name}: LiRA")
    lira = membership(model, split, shadows, device, config.max_non_members, outputs) if shadows is not None else None
    return ModelAudit(name, result.forget_test_acc, result.retain_test_acc, result.forget_train_acc, distances,
                      class_js, probe, relearn, lira, class_tv, retain_relearn)


def _fmt(value: float | None, percent: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if percent else f"{value:.3f}"


def verdicts(unlearned: ModelAudit, original: ModelAudit, retrained: ModelAudit,
             probe_random: float | None = None) -> list[Verdict]:
    """The four verdict rows for one unlearned model (thresholds: module constants). ``probe_random``: the
    probe's accuracy on a randomly initialised model's features; when it reaches the retrained model's, the
    probe cannot tell forgetting from hiding and the features row gives no verdict."""
    rows = []
    u, r = unlearned.forget_test_acc, retrained.forget_test_acc
    if u is None or r is None:  # instance requests: forget-train accuracy against the retrained model's
        u, r = unlearned.forget_train_acc, retrained.forget_train_acc
    ok = None if u is None or r is None else u <= r + OUTPUT_SLACK
    rows.append(Verdict("output", ok, u, r, f"Forget-set accuracy {_fmt(u)} against the retrained model's {_fmt(r)}."))
    u, r = unlearned.probe_forget_acc, retrained.probe_forget_acc
    if u is None or r is None:
        rows.append(Verdict("features", None, u, r, "The probe needs held-out images of the forgotten class (class requests)."))
    elif probe_random is not None and probe_random >= r - FEATURE_SLACK:
        rows.append(Verdict("features", None, u, r, f"A linear probe reads the forgotten class at {_fmt(u)} here and "
                            f"{_fmt(r)} on the retrained model, but at {_fmt(probe_random)} even on a random network's "
                            "features: on this data the probe cannot tell forgetting from hiding."))
    else:
        ok = u <= r + FEATURE_SLACK
        gap = (u - r) * 100
        sentence = (f"A linear probe on the features reads the forgotten class at {_fmt(u)}; on the retrained model "
                    f"{_fmt(r)}.")
        if not ok:
            sentence += f" {gap:.0f} points above: output-only forgetting, the features still hold the class."
        rows.append(Verdict("features", ok, u, r, sentence))
    if unlearned.lira is None or retrained.lira is None:
        rows.append(Verdict("attack", None, None, None, "LiRA did not run: no shadow models were used (none chosen, or none "
                            "built for this setting; --shadows K or the Audit page builds them)."))
    else:
        u, r = unlearned.lira.auc, retrained.lira.auc
        ok = None if u is None or r is None else u <= r + ATTACK_SLACK
        sentence = f"LiRA tells forget-train from unseen images with AUC {_fmt(u, False)}; retrained {_fmt(r, False)}."
        o = original.lira.auc if original.lira else None
        if o is not None and o < LEAKY_ORIGINAL_AUC:
            sentence += (f" The original model already leaks little (AUC {o:.3f}), so passing this says little "
                         "about privacy.")
        rows.append(Verdict("attack", ok, u, r, sentence))
    if unlearned.relearn is None or retrained.relearn is None:
        rows.append(Verdict("relearning", None, None, None, "Relearning is measured for class requests."))
    else:
        steps = len(unlearned.relearn.accuracy) - 1
        u_steps = unlearned.relearn.steps_to_target
        r_steps = retrained.relearn.steps_to_target
        u_value = float(u_steps if u_steps is not None else steps + 1)
        r_value = float(r_steps if r_steps is not None else steps + 1)
        ok = u_value >= RELEARN_FRACTION * r_value
        def count(n: int | None) -> str:
            return f"more than {steps} steps" if n is None else f"{n} step" + ("" if n == 1 else "s")

        sentence = (f"Fine-tuned on {unlearned.relearn.k} forget images it is back at 50% after {count(u_steps)}; "
                    f"the retrained model after {count(r_steps)}.")
        rows.append(Verdict("relearning", ok, u_value, r_value, sentence))
    if unlearned.retain_relearn is None or retrained.retain_relearn is None:
        rows.append(Verdict("retain_relearning", None, None, None, "Retain-only relearning is measured for class "
                            "requests."))
    else:
        u, r = max(unlearned.retain_relearn.accuracy), max(retrained.retain_relearn.accuracy)
        ok = u <= r + OUTPUT_SLACK
        steps = len(unlearned.retain_relearn.accuracy) - 1
        sentence = (f"Fine-tuned on {unlearned.retain_relearn.k} retain images only (no forget image), its forget-set "
                    f"accuracy reaches {_fmt(u)} within {steps} steps; the retrained model's {_fmt(r)}.")
        if not ok:
            sentence += " The class comes back without being shown: it was hidden, not removed."
        rows.append(Verdict("retain_relearning", ok, u, r, sentence))
    rows.append(representation_verdict(unlearned))
    return rows


def representation_verdict(unlearned: ModelAudit) -> Verdict:
    """Whether the penultimate features of the forget images moved towards the retrained model's (linear CKA): an
    unlearned model that stays closer to the original inside changed the classifier, not the representation."""
    last = unlearned.layers[-1] if unlearned.layers else None
    if last is None or math.isnan(last.cka_original_forget):  # no layers measured, or a constant representation
        return Verdict("representation", None, None, None, "The layer-by-layer comparison was not run.")
    to_original, to_retrained = last.cka_original_forget, last.cka_retrained_forget
    ok = to_retrained >= to_original
    sentence = (f"On the forget images its penultimate features are at CKA {to_original:.3f} to the original and "
                f"{to_retrained:.3f} to the retrained model: closer to the "
                + ("retrained model." if ok else "original, so the inside barely changed (hidden behind the classifier)."))
    return Verdict("representation", ok, to_retrained, 1.0, sentence)  # the retrained model: CKA 1 to itself


def audit_models(original: nn.Module, unlearned: dict[str, nn.Module], split: ForgetSplit, reference: nn.Module, *,
                 shadows: ShadowSet | None = None, config: AuditConfig | None = None,
                 device: torch.device | str = "cpu", progress: OptionalProgress = None,
                 keep_original: bool = True) -> AuditReport:
    """Audit several unlearned models of one request (the original and reference measured once).

    Args:
        original: the model before unlearning.
        unlearned: name -> unlearned model.
        split: the forget request.
        reference: the retrained model (see :func:`retrained_reference`).
        shadows: LiRA shadow models for this dataset and architecture (None: no LiRA row).
        config: sample sizes and relearning schedule.
        device: where to compute.
        progress: ``progress(fraction, message)``.
        keep_original: read and keep the original's logits in :mod:`ssd_core.original_outputs`' cache (False: an
            upload on a shared server, whose logits stay off the disk).

    Returns:
        Every number per model and the verdict rows per unlearned model.
    """
    config = config or AuditConfig()
    start = time.perf_counter()
    reference_outputs = split_outputs(reference, split, device)
    models = {"original": original, **{f"unlearned:{k}": v for k, v in unlearned.items()}, "retrained": reference}
    audits: dict[str, ModelAudit] = {}
    for i, (name, model) in enumerate(models.items()):
        step = scaled(progress, 0.95 * i / len(models), 0.95 * (i + 1) / len(models))
        report(step, 0.0, f"auditing {name.removeprefix('unlearned:')}: outputs")
        # one pass over every image per model (the original's is cached and, for the big shipped models, shipped)
        outputs = original_outputs(original, split, device, keep=keep_original) if name == "original" else \
            reference_outputs if name == "retrained" else split_outputs(model, split, device)
        audits[name] = _audit_one(name.removeprefix("unlearned:"), model, outputs, split, reference_outputs, config,
                                  shadows, device, step)
    original_audit, retrained_audit = audits["original"], audits["retrained"]
    probe_random_layers: dict[str, float | None] = {}
    if config.layers:
        report(progress, 0.95, "comparing the models layer by layer")
        samples = layer_samples(split, config.seed)
        k = split.dataset.num_classes
        reps = {}
        for i, (name, model) in enumerate(models.items()):
            report(progress, 0.95 + 0.04 * i / len(models), f"comparing the models layer by layer: {name.removeprefix('unlearned:')}")
            reps[name] = representation(model, samples, k, device)
        target = class_target(split)
        for name, audited in audits.items():
            audited.layers = layer_rows(reps[name], reps["original"], reps["retrained"])
            audited.embedding = embedding(audited.name, reps[name].embedding_features, samples, target,
                                          config.embedding, config.seed)
        report(progress, 0.99, "comparing the models layer by layer: a random network")
        probe_random_layers = representation(random_like(reference, config.seed), samples, k, device).probe
    probe_random = None
    if len(split.forget_test):
        probe_random = probe_accuracy(random_like(reference, config.seed), _probe_train(split, config.probe_max_train, config.seed),
                                      split.forget_test, split.dataset.num_classes, device, config.feature_layer)
    unlearned_audits = {k.removeprefix("unlearned:"): v for k, v in audits.items() if k.startswith("unlearned:")}
    notes = []
    if shadows is None:
        notes.append("No shadow models: the per-example attack (LiRA) was not run.")
    elif original_audit.lira and original_audit.lira.auc is not None and original_audit.lira.auc < LEAKY_ORIGINAL_AUC:
        notes.append(f"The original model leaks little about the forget set (LiRA AUC {original_audit.lira.auc:.3f}): "
                     "a model that generalises this well shows little membership signal, so a low AUC after "
                     "unlearning is not a privacy win.")
    if shadows is not None and int(shadows.config.get("epochs", 0)) < get_spec(shadows.model).epochs:
        notes.append(f"The {shadows.count} LiRA shadow models were trained for {shadows.config['epochs']} epochs each (the "
                     f"original: {get_spec(shadows.model).epochs}) to keep them affordable; shorter training memorises "
                     "less, so the per-example attack is, if anything, weaker than with fully trained shadows.")
    if probe_random is not None and retrained_audit.probe_forget_acc is not None \
            and probe_random >= retrained_audit.probe_forget_acc - FEATURE_SLACK:
        notes.append(f"On this data even a randomly initialised model's features let a linear probe read the forgotten "
                     f"class ({probe_random * 100:.1f}%), so the probe cannot tell forgetting from hiding here.")
    report(progress, 1.0, "audit done")
    return AuditReport(
        request={**split.request.to_dict(), "description": split.request.describe()},
        original=original_audit,
        retrained=retrained_audit,
        unlearned=unlearned_audits,
        verdicts={k: verdicts(v, original_audit, retrained_audit, probe_random) for k, v in unlearned_audits.items()},
        shadows=None if shadows is None else {"count": shadows.count, "source": shadows.source, "seed": shadows.seed,
                                              "epochs": int(shadows.config.get("epochs", 0))},
        seconds={"audit": time.perf_counter() - start},
        notes=notes,
        probe_random=probe_random,
        probe_random_layers=probe_random_layers,
    )


def audit(original: nn.Module, unlearned: nn.Module, split: ForgetSplit, reference: nn.Module, *,
          shadows: ShadowSet | None = None, config: AuditConfig | None = None, device: torch.device | str = "cpu",
          progress: OptionalProgress = None, name: str = "unlearned") -> AuditReport:
    """Audit one unlearned model against the retrained ``reference`` (see :func:`audit_models`)."""
    return audit_models(original, {name: unlearned}, split, reference, shadows=shadows, config=config,
                        device=device, progress=progress)
