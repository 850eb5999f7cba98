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
from torch import nn
import torch.nn.functional as F

from ..data import ForgetSplit, Subset, batches
from ..progress import OptionalProgress, report, scaled
from ._common import Stopwatch, per_layer_fraction, per_tensor_fraction, require_nonempty, seeded, top_fraction_mask, working_copy
from .base import FULL_RETAIN, MethodResult, MethodSpec, param, register_method
from .random_labels import random_label_update


@dataclass
class SalUnConfig:
    mask_fraction: float = param(0.5, "fraction of parameter entries updated (largest forget-loss gradient)", min=0.001, max=1.0)
    epochs: int = param(2, "epochs over the retain set (the forget set is cycled alongside)", min=1, max=1000)
    lr: float = param(0.02, "SGD learning rate (momentum 0.9)", min=1e-6, max=10.0, log=True)
    batch_size: int = param(64, "retain batch size", min=2, max=4096)
    forget_batch_size: int = param(32, "forget batch size", min=1, max=4096)
    seed: int = param(0, "seed for the data order and the random labels", min=0, max=2**31 - 1)


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


def _run(model: nn.Module, split: ForgetSplit, config: SalUnConfig, *, device: torch.device, progress: OptionalProgress = None) -> MethodResult:
    watch = Stopwatch()
    require_nonempty(split.retain_train, "retain set", "SalUn")
    with seeded(config.seed, device):
        work = working_copy(model, device)
        with watch.step("saliency"):
            saliency = forget_gradient_saliency(work, split.forget_train, device)
            masks = top_fraction_mask(saliency, config.mask_fraction)
        report(progress, 0.05, "saliency mask ready")
        with watch.step("training"):
            info = random_label_update(
                work,
                split,
                epochs=config.epochs,
                lr=config.lr,
                batch_size=config.batch_size,
                forget_batch_size=config.forget_batch_size,
                weight_decay=0.0,
                seed=config.seed,
                device=device,
                masks=masks,
                progress=scaled(progress, 0.05, 1.0),
                label="SalUn",
            )
    report(progress, 1.0, "SalUn done")
    selected = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    info.update(
        {
            "selected": selected,
            "total_parameters": total,
            "selected_fraction": selected / total,
            "per_layer_fraction": per_layer_fraction(masks),
            "per_tensor_fraction": per_tensor_fraction(masks),
        }
    )
    return MethodResult(model=work, seconds=watch.finish(), data_touched=FULL_RETAIN, diagnostics=info)


register_method(
    MethodSpec(
        "salun",
        "SalUn: random-label unlearning that only updates the weights most salient to the forget loss.",
        SalUnConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
