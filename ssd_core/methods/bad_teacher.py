"""Bad Teacher (Chundawat et al., AAAI 2023): distil from a competent and an incompetent teacher.

The student starts as a copy of the original model. Two frozen teachers: the competent one is the
original model, the incompetent one a randomly initialised model of the same architecture
(seeded; the architecture is recognised from the model or given as ``model_name``). On a mix of
the forget set and a random ``retain_fraction`` of the retain set, the student minimises

    KL(teacher(x) || student(x))   at temperature T (batch mean, times T^2),

where the teacher is the incompetent one for forget samples and the competent one for retain
samples: it copies the original on Dr and "knows nothing" on Df.

Default schedule (seconds on digits/smallcnn on CPU): 3 epochs over Df + 30% of Dr (shuffled
together), batch 64, Adam lr 1e-3, T = 1. The authors use 1 epoch at lr 1e-4 on large data;
on a small set a few epochs at a larger rate are needed to move the model far enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Subset, to_float
from ..progress import OptionalProgress, report
from .base import RETAIN_SUBSET, MethodOutcome, MethodSpec, param, register_method, seed_param
from .loops import Stopwatch, distill_kl, fresh_model_like, frozen_copy, shuffled_batches, steps_per_epoch
from .runner import MethodData


@dataclass
class BadTeacherConfig:
    """Bad Teacher: the student follows the original on retain data and a random teacher on the forget set."""

    epochs: int = param(3, "epochs over forget set + retain subset", min=1, max=1000)
    lr: float = param(1e-3, "Adam learning rate", min=1e-7, max=1.0, log=True)
    batch_size: int = param(64, "batch size", min=2, max=4096)
    retain_fraction: float = param(0.3, "fraction of the retain set used", min=0.01, max=1.0)
    temperature: float = param(1.0, "distillation temperature T", min=0.1, max=100.0)
    model_name: str = param("", "architecture of the incompetent teacher; empty = recognise it from the model")
    seed: int = seed_param("the retain subset, the data order and the incompetent teacher")


def _run(student: nn.Module, data: MethodData, config: BadTeacherConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")  # the runner drew retain_fraction of it
    forget = data.forget_train
    generator = data.generator
    with watch.step("setup"):
        competent = frozen_copy(student, device)
        incompetent, arch = fresh_model_like(student, data.dataset, config.model_name, seed=config.seed, device=device)
        incompetent = frozen_copy(incompetent, device)
        x_all = torch.cat([forget.x, retain.x])
        is_forget = torch.cat([torch.ones(len(forget), dtype=torch.bool), torch.zeros(len(retain), dtype=torch.bool)])
        mixed = Subset(x_all, is_forget.long(), torch.arange(len(x_all)))
    with watch.step("training"):
        opt = torch.optim.Adam(student.parameters(), lr=config.lr)
        total = config.epochs * steps_per_epoch(len(mixed), config.batch_size)
        stream = shuffled_batches(len(mixed), config.batch_size, generator)
        student.train()
        history = []
        for step in range(total):
            idx = next(stream)
            x = to_float(mixed.x[idx], device)
            forget_mask = is_forget[idx].to(device).unsqueeze(1)
            with torch.no_grad():
                target = torch.where(forget_mask, incompetent(x), competent(x))
            loss = distill_kl(student(x), target, config.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 10 == 0 or step == total - 1:
                history.append({"step": step, "kl": loss.item()})
                report(progress, (step + 1) / total, f"Bad Teacher step {step + 1}/{total}, KL {loss.item():.3f}")
    diagnostics = {"steps": total, "n_retain_used": len(retain), "incompetent_teacher": arch, "history": history}
    return MethodOutcome(student, diagnostics, watch.seconds)


register_method(
    MethodSpec(
        "bad_teacher",
        "Bad Teacher: distil from the original on retain data and from a random model on the forget set.",
        BadTeacherConfig,
        _run,
        data_touched=RETAIN_SUBSET,
    )
)
