"""Sharpness-aware parameter selection (Malekmohammadi, Lee, Xiong, 2025).

Only the parameter entries where the training loss is sharpest are updated during unlearning:

1. Score every parameter entry. ``selection="sharpness"`` (default): the diagonal of the Hessian
   of the cross-entropy training loss at the learned weights, estimated with Hutchinson
   (``importance.hessian_diagonal``: ``n_probes`` Rademacher probes, Hessian-vector products by
   double backward) on ``hessian_samples`` random training images (seeded; D includes Df).
   Alternatives with the same budget, to see whether sharpness matters: ``fisher`` (the SSD
   batch Fisher diagonal on the same images), ``magnitude`` (|theta|) and ``random``.
2. Keep the top ``p`` percent of all entries, ranked globally over every parameter tensor.
3. Run NegGrad+ (ascent on Df + descent on Dr, see :mod:`.neggrad_plus`) on that subset only:
   gradients of unselected entries are zeroed, plain SGD with momentum but no weight decay (so an
   unselected entry's momentum stays exactly zero), BatchNorm kept in eval mode (running
   statistics untouched), and finally every unselected entry is copied back from the original,
   so everything outside the selection is bit-identical.

Default schedule (seconds on digits/smallcnn on CPU): 4 probes on 256 training images (two batches,
so 8 Hessian-vector products, each about 10 backward passes' worth on CPU), p = 5%,
then 3 epochs of NegGrad+ over Dr at lr 0.01 with a cosine decay (retain batch 64, forget batch
32, forget weight 1, cap 3 nats); on digits/smallcnn every single-class request is forgotten with
retain-test >= 97%. The sharpest entries have the largest curvature, so they tolerate only small
steps (lr times curvature must stay small): 0.05 diverged on digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Subset
from ..importance import compute_importance, hessian_diagonal
from ..progress import OptionalProgress, report, scaled
from .base import (
    FULL_DATA,
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
from .loops import Stopwatch, frozen_copy, mask_summary, restore_unselected, top_fraction_mask
from .neggrad_plus import neggrad_plus_update
from .runner import MethodData

SELECTIONS = ("sharpness", "fisher", "magnitude", "random")


@dataclass
class SAPSConfig:
    """SAPS: NegGrad+ on the top p % of parameters chosen by a selection rule."""

    p: float = param(5.0, "percent of all parameter entries updated (the rest stay frozen)", min=1.0, max=10.0)
    selection: str = param("sharpness", "how entries are ranked: Hessian diagonal, Fisher, |weight| or random", choices=SELECTIONS)
    n_probes: int = param(4, "Hutchinson probe vectors per batch (sharpness only)", min=1, max=1000)
    hessian_samples: int = param(256, "training images used to score the parameters", min=1, max=1_000_000)
    hessian_batch_size: int = param(128, "batch size for the Hessian/Fisher estimate", min=1, max=4096)
    epochs: int = epochs_param(3, "the retain set (NegGrad+)")
    lr: float = lr_param(0.01, "SGD learning rate (momentum 0.9, cosine decay, no weight decay)")
    batch_size: int = batch_param(64)
    forget_batch_size: int = forget_batch_param(32)
    forget_weight: float = param(1.0, "weight of the ascent term on the forget set", min=0.0, max=100.0)
    forget_loss_cap: float = param(3.0, "stop ascending once the forget batch's loss exceeds this (nats)", min=0.1, max=1e6, log=True)
    seed: int = seed_param("the scoring subset, the probes, random selection and the data order")


def selection_scores(
    model: nn.Module, train: Subset, config: SAPSConfig, device: torch.device, progress: OptionalProgress = None
) -> dict[str, torch.Tensor]:
    """A score per parameter entry (on ``train``, the training data D); the top ``p`` percent are updated."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(config.seed)
    if config.selection == "magnitude":
        return {n: p.detach().abs() for n, p in named}
    if config.selection == "random":
        return {n: torch.rand(p.shape, generator=generator).to(device) for n, p in named}
    if config.hessian_samples < len(train):
        train = train.select(torch.randperm(len(train), generator=generator)[: config.hessian_samples])
    if config.selection == "fisher":
        return compute_importance(model, train, "fisher", config.hessian_batch_size, device, progress)
    return hessian_diagonal(model, train, config.n_probes, config.hessian_batch_size, device, progress, seed=config.seed)


def _run(work: nn.Module, data: MethodData, config: SAPSConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")
    original = frozen_copy(work, device)
    with watch.step("selection"):
        scores = selection_scores(work, data.train, config, device, scaled(progress, 0.0, 0.4))
        masks = top_fraction_mask(scores, config.p / 100.0)
    report(progress, 0.4, f"selected the top {config.p:g}% by {config.selection}")
    with watch.step("update"):
        info = neggrad_plus_update(
            work, retain, data.forget_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
            forget_batch_size=config.forget_batch_size, forget_weight=config.forget_weight,
            forget_loss_cap=config.forget_loss_cap, seed=config.seed, device=device, masks=masks, train_mode=False,
            progress=scaled(progress, 0.4, 1.0),
        )
        restore_unselected(work, original, masks)
    info.update({"selection": config.selection, **mask_summary(masks)})
    return MethodOutcome(work, info, watch.seconds)


register_method(
    MethodSpec(
        "saps",
        "Sharpness-aware parameter selection: NegGrad+ on only the top p% of weights by Hessian diagonal.",
        SAPSConfig,
        _run,
        data_touched=FULL_DATA,  # the scores are of the training loss over D
    )
)
