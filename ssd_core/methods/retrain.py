"""Retrain from scratch on the retain set: the gold standard every other method is compared to.

The architecture is re-created, not reset layer by layer: a freshly initialised model of the same
registered architecture (``models.build_for_dataset``) is trained on Dr with ``train.fit``.
Which architecture: the ``model_name`` option when given, otherwise it is recognised from the
model itself (same class and the same parameter names and shapes as exactly one registry entry;
see ``loops.architecture_name``), so the method keeps the shared signature and needs no
extra argument.

Default schedule: the original's (``TrainConfig.default``: the architecture's own schedule from the model
registry with the dataset's changes; smallcnn: 15 epochs, Adam 1e-3, batch 64, about 5 s on digits on one CPU
core), so the retrained model is what training without Df would have given. Set
``epochs``/``lr``/``batch_size`` to override (0 keeps the default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..progress import OptionalProgress
from ..train import TrainConfig, retrain_from_scratch
from .base import RETAIN_ONLY, MethodOutcome, MethodSpec, param, register_method, seed_param
from .loops import Stopwatch, architecture_name
from .runner import MethodData


@dataclass
class RetrainConfig:
    """Retraining from scratch on the retain set (the gold standard)."""

    model_name: str = param("", "architecture to re-create; empty = recognise it from the model")
    epochs: int = param(0, "training epochs on the retain set; 0 = the architecture's default schedule", min=0, max=1000)
    lr: float = param(0.0, "learning rate; 0 = the architecture's default", min=0.0, max=10.0)
    batch_size: int = param(0, "batch size; 0 = the architecture's default", min=0, max=4096)
    seed: int = seed_param("the initialisation and the data order")


def _run(work: nn.Module, data: MethodData, config: RetrainConfig, *, device: torch.device,
         progress: OptionalProgress = None) -> MethodOutcome:
    watch = Stopwatch()
    retain = data.require("retain_train", "retain set")
    name = architecture_name(work, data.dataset, config.model_name)  # only the architecture is used
    original = TrainConfig.default(data.dataset.name, name, config.seed)  # the original's schedule on this data
    epochs = config.epochs or original.epochs
    lr = config.lr or original.lr
    batch_size = config.batch_size or original.batch_size
    schedule = replace(original, epochs=epochs, lr=lr, batch_size=batch_size)
    with watch.step("training"):
        trained = retrain_from_scratch(data.dataset, retain, schedule, data_key=data.data_key, device=device,
                                       progress=progress)
    diagnostics = {"architecture": name, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                   "optimizer": schedule.optimizer, "n_retain": len(retain), "source": trained.source}
    if trained.source != "trained":  # loaded from disk: the training's cost is the recorded one
        diagnostics["recorded_training_s"] = trained.seconds
    return MethodOutcome(trained.model.to(device), diagnostics, watch.seconds)


register_method(
    MethodSpec(
        "retrain",
        "Retrain from scratch on the retain set (the gold standard; slowest).",
        RetrainConfig,
        _run,
        data_touched=RETAIN_ONLY,
    )
)
