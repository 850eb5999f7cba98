"""Distance of a model's outputs to the retrained model's (the gold standard).

For each subset (forget-test, forget-train, retain-test) and each true class of the test split:

- KL: mean over samples of KL(p_retrained || p_model) of the softmax outputs (nats); 0 when
  the model answers exactly as the retrained one, large when it is confident where the
  retrained model is not (e.g. still recognising the forgotten class).
- JS: mean Jensen-Shannon divergence (nats, in [0, ln 2]), symmetric and bounded.
- activation distance: mean L2 distance between the two probability vectors (the SSD paper's
  "activation distance"), in [0, sqrt(2)].
- total variation: mean of half the L1 distance between the two probability vectors, in [0, 1]: the
  largest difference in probability the two models give any set of classes (the output distance of
  CMIA/TREW, 2026, which catches class-level leakage accuracy and population MIA miss).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..metrics import js_divergence

DISTANCE_SUBSETS = ("forget_test", "forget_train", "retain_test")


@dataclass(frozen=True)
class Distance:
    """Mean divergences of one model's outputs from the reference's on one set of images."""

    kl: float | None
    js: float | None
    activation: float | None
    n: int
    total_variation: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p || q) (nats) between the softmax distributions of two sets of logits."""
    log_p = F.log_softmax(p_logits.double(), dim=1)
    log_q = F.log_softmax(q_logits.double(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(1).clamp_min(0.0)


def activation_distance(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 distance between the two probability vectors."""
    return (F.softmax(p_logits.double(), 1) - F.softmax(q_logits.double(), 1)).norm(dim=1)


def total_variation(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample total-variation distance (half the L1 distance) between the two softmax distributions."""
    return 0.5 * (F.softmax(p_logits.double(), 1) - F.softmax(q_logits.double(), 1)).abs().sum(1)


def distance(model_logits: torch.Tensor, reference_logits: torch.Tensor) -> Distance:
    """Mean KL(reference || model), JS, activation distance and total variation over matching rows."""
    n = int(model_logits.shape[0])
    if n == 0:
        return Distance(None, None, None, 0)
    return Distance(
        kl=float(kl_divergence(reference_logits, model_logits).mean()),
        js=float(js_divergence(model_logits, reference_logits).double().mean()),
        activation=float(activation_distance(model_logits, reference_logits).mean()),
        n=n,
        total_variation=float(total_variation(model_logits, reference_logits).mean()),
    )


def per_class_js(model_logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor,
                 num_classes: int) -> list[float | None]:
    """Mean JS divergence to the reference for the samples of each true class (None: no sample)."""
    return _per_class(js_divergence(model_logits, reference_logits).double(), labels, num_classes)


def per_class_tv(model_logits: torch.Tensor, reference_logits: torch.Tensor, labels: torch.Tensor,
                 num_classes: int) -> list[float | None]:
    """Mean total variation to the reference for the samples of each true class (None: no sample)."""
    return _per_class(total_variation(model_logits, reference_logits), labels, num_classes)


def _per_class(values: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float(values[mask].mean()) if bool(mask.any()) else None)
    return out
