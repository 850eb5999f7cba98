"""SalUn, saliency unlearning (Fan et al., ICLR 2024).

1. Weight saliency: the gradient of the forget loss at the original weights,
   g = grad of CE over the whole forget set (model in eval mode, batch-size-weighted mean over
   mini-batches), and the mask keeps the entries with the largest |g|: the top
   ``mask_fraction`` (default 50%) of all parameter entries, ranked globally.
2. Random-label unlearning restricted to the mask: forget images with random wrong labels plus
   the retain set, cross-entropy, gradients of unselected entries zeroed. No weight decay, so
   unselected weights stay exactly as they were (BatchNorm running statistics still adapt, as in
   the authors' train-mode updates).

Default schedule (seconds on digits/smallcnn on CPU): 2 epochs over Dr, retain batch 64 + forget
batch 32, SGD momentum 0.9, lr 0.02.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset, batches
from ..progress import OptionalProgress, report, scaled
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
from .loops import Stopwatch, mask_summary, top_fraction_mask
from .random_labels import random_label_update
from .runner import MethodData


@dataclass
class SalUnConfig:
    """SalUn: random-label updates restricted to the most forget-salient weights."""

    mask_fraction: float = param(0.5, "fraction of parameter entries updated (largest forget-loss gradient)", min=0.001, max=1.0)
    epochs: int = epochs_param(2, "the retain set (the forget set is cycled alongside)")
    lr: float = lr_param(0.02)
    batch_size: int = batch_param(64)
    forget_batch_size: int = forget_batch_param(32)
    seed: int = seed_param("the data order and the random labels")


def forget_gradient_saliency(model: nn.Module, forget: Subset, device: torch.device, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """|gradient of the mean cross-entropy over ``forget``| per parameter entry (eval mode)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    totals = [torch.zeros_like(p) for _, p in named]
    was_training = model.training
    model.eval()
    try:
        for x, y in batches(forget, batch_size, device):
            loss = F.cross_entropy(model(x), y, reduction="sum") / len(forget)
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            for total, g in zip(totals, grads):
                if g is not None:
                    total.add_(g)
    finally:
        model.train(was_training)
    return {n: t.abs() for (n, _), t in zip(named, totals)}


def _run(work: nn.Module, data: MethodData, config: SalUnConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain, forget = data.require("retain_train", "retain set"), data.forget_train
    with watch.step("saliency"):
        saliency = forget_gradient_saliency(work, forget, device)
        masks = top_fraction_mask(saliency, config.mask_fraction)
    report(progress, 0.05, "saliency mask ready")
    with watch.step("training"):
        info = random_label_update(
            work, retain, forget, data.dataset.num_classes, epochs=config.epochs, lr=config.lr,
            batch_size=config.batch_size, forget_batch_size=config.forget_batch_size, weight_decay=0.0,
            seed=config.seed, device=device, masks=masks, progress=scaled(progress, 0.05, 1.0), label="SalUn",
        )
    info.update(mask_summary(masks))
    return MethodOutcome(work, info, watch.seconds)


register_method(
    MethodSpec(
        "salun",
        "SalUn: random-label unlearning that only updates the weights most salient to the forget loss.",
        SalUnConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
