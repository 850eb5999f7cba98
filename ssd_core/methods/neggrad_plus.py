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
from torch import nn
import torch.nn.functional as F

from ..data import ForgetSplit
from ..progress import OptionalProgress, report
from ._common import (
    Stopwatch,
    mask_gradients,
    paired_batches,
    require_nonempty,
    seeded,
    sgd,
    steps_per_epoch,
    take,
    working_copy,
)
from .base import FULL_RETAIN, MethodResult, MethodSpec, param, register_method


@dataclass
class NegGradPlusConfig:
    epochs: int = param(2, "epochs over the retain set (the forget set is cycled alongside)", min=1, max=1000)
    lr: float = param(0.005, "SGD learning rate (momentum 0.9, cosine decay)", min=1e-6, max=10.0, log=True)
    batch_size: int = param(64, "retain batch size", min=2, max=4096)
    forget_batch_size: int = param(32, "forget batch size", min=1, max=4096)
    forget_weight: float = param(0.5, "weight of the ascent term on the forget set", min=0.0, max=100.0)
    forget_loss_cap: float = param(3.0, "stop ascending once the forget batch's loss exceeds this (nats)", min=0.1, max=1e6, log=True)
    seed: int = param(0, "seed for the data order", min=0, max=2**31 - 1)


def neggrad_plus_update(
    work: nn.Module,
    split: ForgetSplit,
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
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    opt = sgd([p for _, p in named], lr, momentum=momentum, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    total = epochs * steps_per_epoch(len(split.retain_train), batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    work.train(train_mode)
    history = []
    for step, r_idx, f_idx in paired_batches(
        len(split.retain_train), len(split.forget_train), batch_size, forget_batch_size, total, generator
    ):
        xr, yr = take(split.retain_train, r_idx, device)
        xf, yf = take(split.forget_train, f_idx, device)
        logits = work(torch.cat([xr, xf]))
        retain_loss = F.cross_entropy(logits[: len(yr)], yr)
        forget_loss = F.cross_entropy(logits[len(yr) :], yf)
        loss = retain_loss - forget_weight * torch.clamp(forget_loss, max=forget_loss_cap)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masks is not None:
            mask_gradients(named, masks)
        opt.step()
        schedule.step()
        if step % 10 == 0 or step == total - 1:
            history.append({"step": step, "retain_loss": retain_loss.item(), "forget_loss": forget_loss.item()})
            report(progress, (step + 1) / total, f"NegGrad+ step {step + 1}/{total}, forget loss {forget_loss.item():.2f}")
    work.eval()
    return {"steps": total, "history": history}


def _run(model: nn.Module, split: ForgetSplit, config: NegGradPlusConfig, *, device: torch.device, progress: OptionalProgress = None) -> MethodResult:
    watch = Stopwatch()
    require_nonempty(split.retain_train, "retain set", "NegGrad+")
    with watch.step("training"), seeded(config.seed, device):
        work = working_copy(model, device)
        info = neggrad_plus_update(
            work,
            split,
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            forget_batch_size=config.forget_batch_size,
            forget_weight=config.forget_weight,
            forget_loss_cap=config.forget_loss_cap,
            seed=config.seed,
            device=device,
            progress=progress,
        )
    report(progress, 1.0, "NegGrad+ done")
    return MethodResult(model=work, seconds=watch.finish(), data_touched=FULL_RETAIN, diagnostics=info)


register_method(
    MethodSpec(
        "neggrad_plus",
        "NegGrad+: gradient ascent on the forget set plus descent on the retain set.",
        NegGradPlusConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
