"""Random labels ("amnesiac" unlearning, Graves et al., 2021).

The forget images are relabelled with random *wrong* classes (drawn afresh at every step, seeded)
and the model is trained on them together with the retain set, with plain cross-entropy on the
mixed batch: the forget set's true labels are overwritten while Dr keeps the rest intact.

Default schedule (seconds on digits/smallcnn on CPU): 2 epochs over Dr, retain batch 64 + forget
batch 32 per step (the forget set is cycled), SGD momentum 0.9, lr 0.01, weight decay 5e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset
from ..progress import OptionalProgress
from .base import (
    FULL_RETAIN,
    MethodOutcome,
    MethodSpec,
    batch_param,
    epochs_param,
    forget_batch_param,
    lr_param,
    param,
    register_method,
    seed_param,
)
from .loops import Stopwatch, paired_update, random_other_labels, sgd
from .runner import MethodData


@dataclass
class RandomLabelsConfig:
    """Random labels: the forget set relabelled at random, trained on beside retain batches."""

    epochs: int = epochs_param(2, "the retain set (the forget set is cycled alongside)")
    lr: float = lr_param(0.01)
    batch_size: int = batch_param(64)
    forget_batch_size: int = forget_batch_param(32)
    weight_decay: float = param(5e-4, "SGD weight decay", min=0.0, max=1.0)
    seed: int = seed_param("the data order and the random labels")


def random_label_update(
    work: nn.Module,
    retain: Subset,
    forget: Subset,
    num_classes: int,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    forget_batch_size: int,
    weight_decay: float,
    seed: int,
    device: torch.device,
    masks: dict[str, torch.Tensor] | None = None,
    progress: OptionalProgress = None,
    label: str = "random labels",
) -> dict:
    """Train ``work`` in place on Dr + Df-with-random-wrong-labels; ``masks`` restricts the update."""

    def step_loss(model, xr, yr, xf, yf, generator):
        wrong = random_other_labels(yf, num_classes, generator)
        loss = F.cross_entropy(model(torch.cat([xr, xf])), torch.cat([yr, wrong]))
        return loss, {"loss": loss}

    optimizer = sgd([p for p in work.parameters() if p.requires_grad], lr, weight_decay=weight_decay)
    return paired_update(work, retain, forget, step_loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         forget_batch_size=forget_batch_size, generator=torch.Generator().manual_seed(seed),
                         device=device, masks=masks, progress=progress, label=label)


def _run(work: nn.Module, data: MethodData, config: RandomLabelsConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")
    with watch.step("training"):
        info = random_label_update(
            work, retain, data.forget_train, data.dataset.num_classes, epochs=config.epochs, lr=config.lr,
            batch_size=config.batch_size, forget_batch_size=config.forget_batch_size,
            weight_decay=config.weight_decay, seed=config.seed, device=device, progress=progress,
        )
    return MethodOutcome(work, info, watch.seconds)


register_method(
    MethodSpec(
        "random_labels",
        "Amnesiac unlearning: train on the forget set with random wrong labels, plus the retain set.",
        RandomLabelsConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
