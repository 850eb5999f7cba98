"""SCRUB (Kurmanji et al., NeurIPS 2023): teacher-student unlearning with alternating max/min steps.

Student = copy of the original, teacher = the original (frozen). For each epoch:

- max step (only in the first ``max_epochs`` epochs): one pass over Df minimising
  -KL(teacher || student) at temperature T, i.e. pushing the student away from the teacher on
  the forget set;
- min step: one pass over Dr minimising gamma * CE + alpha * KL(teacher || student), keeping the
  student close to the teacher (and correct) on the retain set.

KL is temperature-softened and scaled by T^2, batch mean. The max step is unbounded (with a
near-one-hot teacher it is gradient ascent on the forget set), so it is capped like NegGrad+: once
a forget batch's KL exceeds ``forget_kl_cap`` it is no longer pushed.

Default schedule (seconds on digits/smallcnn on CPU): 3 epochs, max passes in the first 2, SGD
momentum 0.9, lr 0.005, weight decay 5e-4, forget batch 32, retain batch 64, T = 4, KL cap 2,
alpha = 0.001, gamma = 1 (with alpha = 1 the teacher's soft outputs on retain images, which still
encode the forgotten class at T = 4, taught it back). Tuned on the shipped digits/smallcnn over
all ten single-class requests: every class forgotten, retain-test >= 97% on 8 of 10 (classes 1
and 6: 82% and 93%); smaller rates or a single max pass left the class untouched, larger ones
collapsed the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import OptionalProgress, report
from .base import (
    FULL_RETAIN,
    MethodOutcome,
    MethodSpec,
    batch_param,
    forget_batch_param,
    lr_param,
    param,
    register_method,
    seed_param,
)
from .loops import Stopwatch, distill_kl, frozen_copy, sgd, shuffled_batches, steps_per_epoch, take
from .runner import MethodData


@dataclass
class ScrubConfig:
    """SCRUB: alternate max steps away from the teacher on Df and min steps toward it on Dr."""

    epochs: int = param(3, "epochs (each: optional max pass over Df, then a min pass over Dr)", min=1, max=1000)
    max_epochs: int = param(2, "how many of the first epochs include the max (forget) pass", min=0, max=1000)
    lr: float = lr_param(0.005)
    batch_size: int = batch_param(64)
    forget_batch_size: int = forget_batch_param(32)
    temperature: float = param(4.0, "distillation temperature T", min=0.1, max=100.0)
    forget_kl_cap: float = param(2.0, "stop pushing a forget batch away once its KL to the teacher exceeds this",
                                 min=0.01, max=1e6, log=True)
    alpha: float = param(0.001, "weight of KL to the teacher on the retain set", min=0.0, max=100.0)
    gamma: float = param(1.0, "weight of cross-entropy on the retain set", min=0.0, max=100.0)
    weight_decay: float = param(5e-4, "SGD weight decay", min=0.0, max=1.0)
    seed: int = seed_param()


def _run(student: nn.Module, data: MethodData, config: ScrubConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain, forget = data.require("retain_train", "retain set"), data.forget_train
    generator = data.generator
    n_f, n_r = len(forget), len(retain)
    forget_steps = steps_per_epoch(n_f, config.forget_batch_size)
    retain_steps = steps_per_epoch(n_r, config.batch_size)
    max_epochs = min(config.max_epochs, config.epochs)
    total = max_epochs * forget_steps + config.epochs * retain_steps
    history = []
    with watch.step("training"):
        teacher = frozen_copy(student, device)
        opt = sgd(student.parameters(), config.lr, weight_decay=config.weight_decay)
        forget_stream = shuffled_batches(n_f, config.forget_batch_size, generator)
        retain_stream = shuffled_batches(n_r, config.batch_size, generator)
        done = 0
        for epoch in range(config.epochs):
            student.train()
            record: dict[str, float] = {"epoch": epoch}
            if epoch < max_epochs:
                for _ in range(forget_steps):
                    x, _y = take(forget, next(forget_stream), device)
                    with torch.no_grad():
                        target = teacher(x)
                    divergence = distill_kl(student(x), target, config.temperature)
                    opt.zero_grad(set_to_none=True)
                    (-torch.clamp(divergence, max=config.forget_kl_cap)).backward()
                    opt.step()
                    done += 1
                    if done % 10 == 0:
                        report(progress, done / total, f"SCRUB epoch {epoch + 1}: max step, KL {divergence.item():.3f}")
                record["forget_kl"] = divergence.item()
                report(progress, done / total, f"SCRUB epoch {epoch + 1}: max step, KL {divergence.item():.3f}")
            for _ in range(retain_steps):
                x, y = take(retain, next(retain_stream), device)
                with torch.no_grad():
                    target = teacher(x)
                logits = student(x)
                loss = config.gamma * F.cross_entropy(logits, y) + config.alpha * distill_kl(logits, target, config.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if done % 10 == 0:
                    report(progress, done / total, f"SCRUB epoch {epoch + 1}: min step, loss {loss.item():.3f}")
            record["retain_loss"] = loss.item()
            history.append(record)
            report(progress, done / total, f"SCRUB epoch {epoch + 1}/{config.epochs}: min step, loss {loss.item():.3f}")
    return MethodOutcome(student, {"steps": total, "max_epochs": max_epochs, "history": history}, watch.seconds)


register_method(
    MethodSpec(
        "scrub",
        "SCRUB: move away from the original on the forget set, stay close to it on the retain set.",
        ScrubConfig,
        _run,
        data_touched=FULL_RETAIN,
    )
)
