"""UNSIR (Tarun et al., "Fast yet effective machine unlearning", 2023), the SSD paper's baseline.

1. **Noise.** For each forgotten class c, a batch of noise images is learned that *maximises* the
   model's cross-entropy for c, with an L2 penalty keeping it small:
   minimise -CE(f(N), c) + l2 * mean(N^2) over N (Adam, model frozen in eval mode).
2. **Impair.** One epoch over a random subset of the retain set, each retain batch joined by noise
   images labelled c: the weights that carry class c are pushed where that class's error is
   largest.
3. **Repair.** One epoch over the same retain subset alone, to restore the retained classes.

Class and sub-class requests only (the noise is learned per class). Defaults (tuned on the digits
over all ten classes, see the README's table): 32 noise images per class, 100 noise steps at lr
0.1, l2 0.1; a retain subset of 50 %; impair one epoch at SGD lr 0.02, repair two epochs at lr
0.01, both momentum 0.9, batch 64 + 16 noise images. With the paper's one repair epoch on 30 % of
the retain set, retain-test accuracy fell by up to 21 points on the digits; with two on 50 %, by
at most 8.6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset
from ..progress import OptionalProgress, report, scaled
from ..train import fit
from .base import RETAIN_SUBSET, MethodOutcome, MethodSpec, batch_param, lr_param, param, register_method, seed_param
from .loops import Stopwatch, paired_update, sgd
from .runner import MethodData


@dataclass
class UNSIRConfig:
    """UNSIR: error-maximising noise for the forgotten class, then impair and repair on a retain subset."""

    noise_per_class: int = param(32, "noise images learned per forgotten class", min=1, max=4096)
    noise_steps: int = param(100, "optimisation steps for the noise", min=1, max=10_000)
    noise_lr: float = lr_param(0.1, "Adam learning rate of the noise")
    l2: float = param(0.1, "L2 penalty on the noise (keeps it small)", min=0.0, max=100.0)
    retain_fraction: float = param(0.5, "fraction of the retain set used to impair and repair", min=0.01, max=1.0)
    impair_lr: float = lr_param(0.02, "impair step: SGD learning rate (momentum 0.9)")
    repair_lr: float = lr_param(0.01, "repair step: SGD learning rate (momentum 0.9)")
    repair_epochs: int = param(2, "epochs of the repair step over the retain subset", min=1, max=100)
    batch_size: int = batch_param(64)
    noise_batch_size: int = param(16, "noise images joined to each retain batch while impairing", min=1, max=4096)
    seed: int = seed_param("the noise, the retain subset and the data order")


def learn_noise(model: nn.Module, classes: list[int], shape: tuple[int, ...], config: UNSIRConfig,
                generator: torch.Generator, device: torch.device) -> Subset:
    """Per class, ``noise_per_class`` images that maximise the model's loss for that class."""
    images, labels = [], []
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for c in classes:
            noise = torch.randn((config.noise_per_class, *shape), generator=generator).to(device).requires_grad_(True)
            target = torch.full((config.noise_per_class,), c, dtype=torch.long, device=device)
            opt = torch.optim.Adam([noise], lr=config.noise_lr)
            for _ in range(config.noise_steps):
                loss = -F.cross_entropy(model(noise), target) + config.l2 * noise.pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            images.append(noise.detach().cpu())
            labels.append(target.cpu())
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    x, y = torch.cat(images), torch.cat(labels)
    return Subset(x, y, torch.arange(len(y)))


def _run(work: nn.Module, data: MethodData, config: UNSIRConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    forget = data.require("forget_train", "forget set")
    retain = data.require("retain_train", "retain set")  # the runner drew retain_fraction of it
    classes = sorted({int(c) for c in forget.y.tolist()})
    with watch.step("noise"):
        noise = learn_noise(work, classes, tuple(forget.x.shape[1:]), config, data.generator, device)
        with torch.no_grad():
            noise_loss = float(F.cross_entropy(work(noise.x.to(device)), noise.y.to(device)))
        report(progress, 0.3, f"learned {len(noise)} noise images (their loss {noise_loss:.2f})")

    def impair_loss(model, xr, yr, xn, yn, _generator):
        logits = model(torch.cat([xr, xn]))
        loss = F.cross_entropy(logits, torch.cat([yr, yn]))
        return loss, {"loss": loss}

    with watch.step("impair"):
        impair = paired_update(work, retain, noise, impair_loss, optimizer=sgd(work.parameters(), config.impair_lr),
                               epochs=1, batch_size=config.batch_size, forget_batch_size=config.noise_batch_size,
                               generator=data.generator, device=device, progress=scaled(progress, 0.3, 0.65),
                               label="UNSIR impair")
    with watch.step("repair"):
        fit(work, retain, epochs=config.repair_epochs, lr=config.repair_lr, batch_size=config.batch_size, optimizer="sgd",
            seed=config.seed, device=device, progress=scaled(progress, 0.65, 1.0), cosine=False)
    work.eval()
    diagnostics = {"classes": classes, "noise_images": len(noise), "noise_loss": noise_loss,
                   "n_retain_used": len(retain), "impair_steps": impair.get("steps")}
    return MethodOutcome(work, diagnostics, watch.seconds)


register_method(
    MethodSpec(
        "unsir",
        "UNSIR: learn noise that maximises the forgotten class's error, impair on it with some retain data, then repair.",
        UNSIRConfig,
        _run,
        supports=frozenset({"class", "subclass"}),
        data_touched=RETAIN_SUBSET,
    )
)
