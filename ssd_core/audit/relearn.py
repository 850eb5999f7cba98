"""Relearning: does forgotten knowledge come back after a few fine-tuning steps?

A copy of the model is fine-tuned on ``k`` forget-class training samples (a seeded pick) with a
fixed schedule: full batch of the k samples, cross-entropy, Adam (lr 1e-3), the model in eval
mode (BatchNorm keeps its running statistics: ten images of one class would otherwise rewrite
them), at most ``steps`` steps. After each step the forget-test accuracy is recorded. A model that
only hid the class relearns it in a step or two; the retrained model, which never saw it, needs
more. The model passed in is never modified.

Retain-only relearning (arXiv 2505.22310) runs the same schedule on ``RETAIN_RELEARN_K`` retain-train
images (a seeded pick, no forget image among them): fine-tuning on other classes alone brings a hidden
class back for many methods, while a model that never learnt it stays where it is.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset, to_float
from ..progress import OptionalProgress, report

RELEARN_K = 10
RELEARN_STEPS = 30
RELEARN_LR = 1e-3
RELEARN_TARGET = 0.5  # forget-test accuracy that counts as "relearned"
RETAIN_RELEARN_K = 256  # retain-train images of the retain-only relearning (one full batch)


@dataclass(frozen=True)
class RelearnCurve:
    """Forget-test accuracy before (index 0) and after each fine-tuning step."""

    accuracy: list[float]
    steps_to_target: int | None  # first step with accuracy >= target; None: not within the steps
    target: float
    k: int

    def to_dict(self) -> dict:
        return asdict(self)


def pick_relearn_samples(forget_train: Subset, k: int = RELEARN_K, seed: int = 0) -> Subset:
    """``k`` samples of ``forget_train`` (or of any subset: the retain-only curve picks retain-train images)
    drawn with ``seed`` (all of them when there are fewer)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(forget_train), generator=generator)[: min(k, len(forget_train))]
    return forget_train.select(order.sort().values)


@torch.no_grad()
def _accuracy(model: nn.Module, data: Subset, device: torch.device | str) -> float:
    correct = 0
    for start in range(0, len(data), 512):
        logits = model(to_float(data.x[start:start + 512], device))
        correct += int((logits.argmax(1).cpu() == data.y[start:start + 512]).sum())
    return correct / len(data)


def relearn_curve(model: nn.Module, samples: Subset, evaluate_on: Subset, *, steps: int = RELEARN_STEPS,
                  lr: float = RELEARN_LR, target: float = RELEARN_TARGET,
                  device: torch.device | str = "cpu", progress: OptionalProgress = None) -> RelearnCurve:
    """Fine-tune a copy of ``model`` on ``samples``; accuracy on ``evaluate_on`` after each step."""
    work = copy.deepcopy(model).to(device).eval()
    x, y = to_float(samples.x, device), samples.y.to(device)
    optimizer = torch.optim.Adam(work.parameters(), lr=lr)
    curve = [_accuracy(work, evaluate_on, device)]
    for step in range(steps):
        report(progress, step / steps, f"relearning step {step + 1}/{steps}")
        optimizer.zero_grad()
        with torch.enable_grad():
            F.cross_entropy(work(x), y).backward()
        optimizer.step()
        curve.append(_accuracy(work, evaluate_on, device))
    reached = next((i for i, acc in enumerate(curve) if acc >= target), None)
    return RelearnCurve(curve, reached, target, len(samples))
