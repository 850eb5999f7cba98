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
from torch import nn
import torch.nn.functional as F

from ..data import ForgetSplit
from ..progress import OptionalProgress, report
from ._common import (
    Stopwatch,
    mask_gradients,
    paired_batches,
    random_other_labels,
    require_nonempty,
    seeded,
    sgd,
    steps_per_epoch,
    take,
    working_copy,
)
from .base import FULL_RETAIN, MethodResult, MethodSpec, param, register_method


@dataclass
class RandomLabelsConfig:
    epochs: int = param(2, "epochs over the retain set (the forget set is cycled alongside)", min=1, max=1000)
    lr: float = param(0.01, "SGD learning rate (momentum 0.9)", min=1e-6, max=10.0, log=True)
    batch_size: int = param(64, "retain batch size", min=2, max=4096)
    forget_batch_size: int = param(32, "forget batch size", min=1, max=4096)
    weight_decay: float = param(5e-4, "SGD weight decay", min=0.0, max=1.0)
    seed: int = param(0, "seed for the data order and the random labels", min=0, max=2**31 - 1)


def random_label_update(
    work: nn.Module,
    split: ForgetSplit,
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
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    opt = sgd([p for _, p in named], lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    num_classes = split.dataset.num_classes
    total = epochs * steps_per_epoch(len(split.retain_train), batch_size)
    work.train()
    history = []
    for step, r_idx, f_idx in paired_batches(
        len(split.retain_train), len(split.forget_train), batch_size, forget_batch_size, total, generator
    ):
        xr, yr = take(split.retain_train, r_idx, device)
        xf, yf = take(split.forget_train, f_idx, device)
        wrong = random_other_labels(yf, num_classes, generator)
        loss = F.cross_entropy(work(torch.cat([xr, xf])), torch.cat([yr, wrong]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masks is not None:
            mask_gradients(named, masks)
        opt.step()
        if step % 10 == 0 or step == total - 1:
            history.append({"step": step, "loss": loss.item()})
            report(progress, (step + 1) / total, f"{label} step {step + 1}/{total}, loss {loss.item():.2f}")
    work.eval()
    return {"steps": total, "history": history}


def _run(model: nn.Module, split: ForgetSplit, config: RandomLabelsConfig, *, device: torch.device, progress: OptionalProgress = None) -> MethodResult:
    watch = Stopwatch()
    require_nonempty(split.retain_train, "retain set", "Random labels")
    with watch.step("training"), seeded(config.seed, device):
        work = working_copy(model, device)
        info = random_label_update(
            work,
            split,
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            forget_batch_size=config.forget_batch_size,
            weight_decay=config.weight_decay,
            seed=config.seed,
            device=device,
            progress=progress,
        )
    report(progress, 1.0, "random labels done")
    return MethodResult(model=work, seconds=watch.finish(), data_touched=FULL_RETAIN, diagnostics=info)


register_method(
    MethodSpec(
        "random_labels",
        "Amnesiac unlearning: train on the forget set with random wrong labels, plus the retain set.",
        RandomLabelsConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
