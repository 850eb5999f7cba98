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

from ..data import ForgetSplit
from ..progress import OptionalProgress, report
from ..train import fit
from ._common import Stopwatch, require_nonempty, seeded, working_copy
from .base import RETAIN_ONLY, MethodResult, MethodSpec, param, register_method


@dataclass
class FinetuneConfig:
    epochs: int = param(8, "epochs over the retain set", min=1, max=1000)
    lr: float = param(0.02, "SGD learning rate (momentum 0.9, cosine decay)", min=1e-6, max=10.0, log=True)
    batch_size: int = param(64, "batch size", min=2, max=4096)
    weight_decay: float = param(0.05, "SGD weight decay (what erodes weights only the forget set used)", min=0.0, max=1.0)
    seed: int = param(0, "seed for the data order", min=0, max=2**31 - 1)


def _run(model: nn.Module, split: ForgetSplit, config: FinetuneConfig, *, device: torch.device, progress: OptionalProgress = None) -> MethodResult:
    watch = Stopwatch()
    require_nonempty(split.retain_train, "retain set", "Finetune")
    with watch.step("training"), seeded(config.seed, device):
        work = working_copy(model, device)
        fit(
            work,
            split.retain_train,
            epochs=config.epochs,
            lr=config.lr,
            batch_size=config.batch_size,
            optimizer="sgd",
            weight_decay=config.weight_decay,
            seed=config.seed,
            device=device,
            progress=progress,
        )
    report(progress, 1.0, "finetuned")
    return MethodResult(
        model=work.eval(),
        seconds=watch.finish(),
        data_touched=RETAIN_ONLY,
        diagnostics={"epochs": config.epochs, "n_retain": len(split.retain_train)},
    )


register_method(
    MethodSpec(
        "finetune",
        "Finetune on the retain set only, so the forget set fades (catastrophic forgetting).",
        FinetuneConfig,
        _run,
        data_touched=RETAIN_ONLY,
    )
)
