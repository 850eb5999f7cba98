"""Finetune on the retain set ("catastrophic forgetting" baseline).

The original model keeps training on Dr only; the forget set is never shown, so what it taught
the model fades as the weights move. Default schedule (short, seconds on digits/smallcnn on
CPU): 8 epochs over Dr, SGD with momentum 0.9, lr 0.02 with a cosine decay, weight decay 0.05,
batch 64, data order seeded. The strong weight decay does most of the forgetting: weights that
only the forget set kept large are no longer supported by any gradient and shrink (with the usual
5e-4 a well-trained digits model still recognises the forgotten class after 8 epochs). Tuned on
digits/smallcnn over all ten single-class requests: every class forgotten (0% forget-test) with
retain-test >= 99%; lr 0.05 forgot too but cost up to 40 points of retain accuracy on some classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..progress import OptionalProgress
from ..train import fit
from .base import RETAIN_ONLY, MethodOutcome, MethodSpec, batch_param, epochs_param, lr_param, param, register_method, seed_param
from .loops import Stopwatch
from .runner import MethodData


@dataclass
class FinetuneConfig:
    """Fine-tuning on the retain set only (forgetting by catastrophic forgetting)."""

    epochs: int = epochs_param(8)
    lr: float = lr_param(0.02, "SGD learning rate (momentum 0.9, cosine decay)")
    batch_size: int = batch_param(64, "batch size")
    weight_decay: float = param(0.05, "SGD weight decay (what erodes weights only the forget set used)", min=0.0, max=1.0)
    seed: int = seed_param()


def _run(work: nn.Module, data: MethodData, config: FinetuneConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")
    with watch.step("training"):
        fit(work, retain, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, optimizer="sgd",
            weight_decay=config.weight_decay, seed=config.seed, device=device, progress=progress)
    return MethodOutcome(work, {"epochs": config.epochs, "n_retain": len(retain)}, watch.seconds)


register_method(
    MethodSpec(
        "finetune",
        "Finetune on the retain set only, so the forget set fades (catastrophic forgetting).",
        FinetuneConfig,
        _run,
        data_touched=RETAIN_ONLY,
    )
)
