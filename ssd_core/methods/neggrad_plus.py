"""NegGrad+ (Kurmanji et al., 2023): gradient ascent on the forget set with a retain term.

Each step draws a retain batch and a forget batch (the forget set is cycled) and minimises

    loss = CE(retain batch) - forget_weight * min(CE(forget batch), forget_loss_cap)

so the model climbs the loss on Df while descending it on Dr. Once the forget batch's loss
exceeds ``forget_loss_cap`` the ascent term stops pushing (its gradient is zero), which keeps
the unbounded ascent from wrecking the model; set the cap very high for plain NegGrad+.
Both batches go through one forward pass (so BatchNorm sees a mixed batch in train mode).

Default schedule (seconds on digits/smallcnn on CPU): 2 epochs over Dr, retain batch 64,
forget batch 32, SGD momentum 0.9, lr 0.005 with a cosine decay to 0 (the small final steps settle
the model after the ascent), no weight decay, forget_weight 0.5, cap 3 nats. Tuned on
digits/smallcnn over all ten single-class requests (forget-test 0%, retain-test >= 96% on every
class); with lr 0.01, weight 1 and cap 5 one class lost 70 points of retain accuracy.

:func:`neggrad_plus_update` is reused by SAPS with a parameter mask.
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
from .loops import Stopwatch, paired_update, sgd
from .runner import MethodData


@dataclass
class NegGradPlusConfig:
    """NegGrad+: descent on retain batches, ascent on forget batches."""

    epochs: int = epochs_param(2, "the retain set (the forget set is cycled alongside)")
    lr: float = lr_param(0.005, "SGD learning rate (momentum 0.9, cosine decay)")
    batch_size: int = batch_param(64)
    forget_batch_size: int = forget_batch_param(32)
    forget_weight: float = param(0.5, "weight of the ascent term on the forget set", min=0.0, max=100.0)
    forget_loss_cap: float = param(3.0, "stop ascending once the forget batch's loss exceeds this (nats)", min=0.1, max=1e6, log=True)
    seed: int = seed_param()


def neggrad_plus_update(
    work: nn.Module,
    retain: Subset,
    forget: Subset,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    forget_batch_size: int,
    forget_weight: float,
    forget_loss_cap: float,
    seed: int,
    device: torch.device,
    momentum: float = 0.9,
    masks: dict[str, torch.Tensor] | None = None,
    train_mode: bool = True,
    progress: OptionalProgress = None,
) -> dict:
    """NegGrad+ in place on ``work``; with ``masks`` only the selected entries get gradients.

    ``train_mode=False`` keeps BatchNorm in eval mode (running statistics untouched), which SAPS
    uses so that nothing outside the selected parameters changes. No weight decay is applied, so
    with masked gradients the momentum of unselected entries stays exactly zero.
    """

    def step_loss(model, xr, yr, xf, yf, _generator):
        logits = model(torch.cat([xr, xf]))
        retain_loss = F.cross_entropy(logits[: len(yr)], yr)
        forget_loss = F.cross_entropy(logits[len(yr) :], yf)
        loss = retain_loss - forget_weight * torch.clamp(forget_loss, max=forget_loss_cap)
        return loss, {"retain_loss": retain_loss, "forget_loss": forget_loss}

    optimizer = sgd([p for p in work.parameters() if p.requires_grad], lr, momentum=momentum, weight_decay=0.0)
    return paired_update(work, retain, forget, step_loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                         forget_batch_size=forget_batch_size, generator=torch.Generator().manual_seed(seed),
                         device=device, cosine=True, masks=masks, train_mode=train_mode, progress=progress,
                         label="NegGrad+")


def _run(work: nn.Module, data: MethodData, config: NegGradPlusConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")
    with watch.step("training"):
        info = neggrad_plus_update(
            work, retain, data.forget_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
            forget_batch_size=config.forget_batch_size, forget_weight=config.forget_weight,
            forget_loss_cap=config.forget_loss_cap, seed=config.seed, device=device, progress=progress,
        )
    return MethodOutcome(work, info, watch.seconds)


register_method(
    MethodSpec(
        "neggrad_plus",
        "NegGrad+: gradient ascent on the forget set plus descent on the retain set.",
        NegGradPlusConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
