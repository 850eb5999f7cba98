"""Evaluation: accuracies, per-class accuracy, confusion matrix, MIA, ZRF, gap to retrain.

One batched forward pass over the training and test splits gives every number; subsets are
read off by index. Accuracies are fractions in [0, 1]; a metric over an empty subset is None.

MIA (as in the SSD paper): the per-sample entropy of the softmax output is the only feature; a
logistic regression (class_weight="balanced") learns retain-train samples = member (1) against
test samples = non-member (0); the reported value is the fraction of forget-train samples it
predicts to be members. Lower means the forget set looks less like training data.

ZRF (Chundawat et al.): ZRF = 1 - (1/|Df|) * sum_x JS(p_model(x), p_random(x)), with
JS(p, q) = 0.5 * KL(p || m) + 0.5 * KL(q || m), m = (p + q) / 2, natural logarithms, where
p_random is a randomly initialised model of the same architecture (seeded). JS lies in
[0, ln 2], so ZRF lies in [1 - ln 2, 1]; 1 means the model behaves like a random one on Df.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .data import ForgetSplit, Subset, to_float

ACCURACY_KEYS = ("retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc")


@dataclass
class Evaluation:
    """Every metric of one model on one forget split."""

    retain_test_acc: float | None
    forget_test_acc: float | None
    retain_train_acc: float | None
    forget_train_acc: float | None
    test_acc: float | None
    mia: float | None
    per_class_acc: list[float | None]
    confusion: list[list[int]]
    zrf: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict[str, float | None]:
        """The scalar metrics only."""
        return {k: getattr(self, k) for k in (*ACCURACY_KEYS, "mia", "zrf")}


@dataclass
class SplitOutputs:
    """Logits of a model on the whole training and test splits (on the CPU)."""

    train_logits: torch.Tensor
    test_logits: torch.Tensor
    extra: dict = field(default_factory=dict)


@torch.no_grad()
def logits_of(model: nn.Module, data: Subset, device: torch.device | str, batch_size: int = 1024) -> torch.Tensor:
    """Logits for every image of ``data`` in eval mode, batched, returned on the CPU."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        out.append(model(to_float(data.x[start : start + batch_size], device)).float().cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


def split_outputs(model: nn.Module, split: ForgetSplit, device: torch.device | str, batch_size: int = 1024) -> SplitOutputs:
    return SplitOutputs(logits_of(model, split.train, device, batch_size), logits_of(model, split.test, device, batch_size))


def _acc(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    if len(labels) == 0:
        return None
    return int((logits.argmax(1) == labels).sum()) / len(labels)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample entropy (nats) of the softmax distribution."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, reduction="none")


def mia_from_entropies(retain: torch.Tensor, test: torch.Tensor, forget: torch.Tensor) -> float | None:
    """Fraction of forget samples a member-vs-non-member logistic regression calls members."""
    if len(forget) == 0 or len(retain) == 0 or len(test) == 0:
        return None
    from sklearn.linear_model import LogisticRegression

    features = torch.cat([retain, test]).double().numpy().reshape(-1, 1)
    labels = np.concatenate([np.ones(len(retain)), np.zeros(len(test))])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs")
    clf.fit(features, labels)
    return float(clf.predict(forget.double().numpy().reshape(-1, 1)).mean())


def js_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence (nats) between two softmax distributions."""
    p = F.softmax(p_logits.float(), dim=1)
    q = F.softmax(q_logits.float(), dim=1)
    m = 0.5 * (p + q)
    log_m = m.clamp_min(1e-12).log()
    kl_pm = (p * (p.clamp_min(1e-12).log() - log_m)).sum(1)
    kl_qm = (q * (q.clamp_min(1e-12).log() - log_m)).sum(1)
    return 0.5 * (kl_pm + kl_qm)


def zrf_score(model_logits: torch.Tensor, random_logits: torch.Tensor) -> float | None:
    """ZRF = 1 - mean JS divergence to a random model (see module docstring)."""
    if len(model_logits) == 0:
        return None
    return float(1.0 - js_divergence(model_logits, random_logits).mean())


def evaluate_outputs(
    outputs: SplitOutputs,
    split: ForgetSplit,
    *,
    with_mia: bool = True,
    random_forget_logits: torch.Tensor | None = None,
) -> Evaluation:
    """All metrics from precomputed logits (so figures and metrics share one forward pass)."""
    train_logits, test_logits = outputs.train_logits, outputs.test_logits
    ds = split.dataset
    f_tr, r_tr = split.forget_train.indices, split.retain_train.indices
    f_te, r_te = split.forget_test.indices, split.retain_test.indices
    test_pred = test_logits.argmax(1)
    k = ds.num_classes
    confusion = torch.bincount(ds.test_y * k + test_pred, minlength=k * k).view(k, k)
    per_class: list[float | None] = []
    for c in range(k):
        total = int(confusion[c].sum())
        per_class.append(float(confusion[c, c]) / total if total else None)
    mia = None
    if with_mia:
        train_entropy = entropy(train_logits)
        mia = mia_from_entropies(train_entropy[r_tr], entropy(test_logits), train_entropy[f_tr])
    zrf = None
    if random_forget_logits is not None:
        zrf = zrf_score(train_logits[f_tr], random_forget_logits)
    return Evaluation(
        retain_test_acc=_acc(test_logits[r_te], ds.test_y[r_te]),
        forget_test_acc=_acc(test_logits[f_te], ds.test_y[f_te]),
        retain_train_acc=_acc(train_logits[r_tr], ds.train_y[r_tr]),
        forget_train_acc=_acc(train_logits[f_tr], ds.train_y[f_tr]),
        test_acc=_acc(test_logits, ds.test_y),
        mia=mia,
        per_class_acc=per_class,
        confusion=confusion.tolist(),
        zrf=zrf,
    )


def random_reference_logits(model_name: str, split: ForgetSplit, device: torch.device | str, seed: int = 0) -> torch.Tensor:
    """Logits of a randomly initialised same-architecture model on the forget-train set (for ZRF)."""
    from .models import build_for_dataset

    reference = build_for_dataset(model_name, split.dataset, seed=seed).to(device)
    return logits_of(reference, split.forget_train, device)


def evaluate(
    model: nn.Module,
    split: ForgetSplit,
    device: torch.device | str = "cpu",
    *,
    with_mia: bool = True,
    random_forget_logits: torch.Tensor | None = None,
    batch_size: int = 1024,
) -> Evaluation:
    """Every metric of ``model`` on ``split`` (one batched pass over train and test)."""
    start = time.perf_counter()
    outputs = split_outputs(model, split, device, batch_size)
    result = evaluate_outputs(outputs, split, with_mia=with_mia, random_forget_logits=random_forget_logits)
    result.seconds = time.perf_counter() - start
    return result


@torch.no_grad()
def test_accuracies(model: nn.Module, split: ForgetSplit, device: torch.device | str = "cpu") -> tuple[float | None, float | None]:
    """(retain-test, forget-test) accuracy: the cheap pair a slider move needs."""
    logits = logits_of(model, split.test, device)
    ds = split.dataset
    return (
        _acc(logits[split.retain_test.indices], ds.test_y[split.retain_test.indices]),
        _acc(logits[split.forget_test.indices], ds.test_y[split.forget_test.indices]),
    )


def gap_to_retrain(result: Evaluation, retrain: Evaluation) -> dict[str, float | None]:
    """|metric - retrain's metric| for each scalar metric (None where either is missing)."""
    gaps: dict[str, float | None] = {}
    for key, value in result.summary().items():
        reference = retrain.summary().get(key)
        gaps[key] = None if value is None or reference is None else abs(value - reference)
    return gaps


def is_over_forgetting(result: Evaluation, retrain: Evaluation, tolerance: float = 0.1) -> bool:
    """Forget accuracy far below the retrained model's (it would itself reveal the forgetting)."""
    ours = result.forget_test_acc if result.forget_test_acc is not None else result.forget_train_acc
    gold = retrain.forget_test_acc if retrain.forget_test_acc is not None else retrain.forget_train_acc
    if ours is None or gold is None or math.isnan(ours) or math.isnan(gold):
        return False
    return ours < gold - tolerance
