"""The retrained model, the audit's reference: a fresh model trained on Dr with the original's schedule.

Retraining itself, and its disk cache (shipped files first), is :func:`ssd_core.train.retrain_from_scratch`,
shared with the ``retrain`` method, so the audit and Compare never retrain the same request twice.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..data import ForgetSplit
from ..progress import OptionalProgress
from ..train import TrainConfig, TrainedModel, retrain_from_scratch, retrained_source


def retrained_reference(split: ForgetSplit, model: str, *, seed: int = 0, device: str | torch.device = "cpu",
                        progress: OptionalProgress = None, cache: bool = True) -> TrainedModel:
    """A fresh ``model`` trained on the request's retain set with seed ``seed`` (shipped or cached on disk).

    Args:
        split: the forget split (its retain-train set is the training data).
        model: the architecture, trained with its default schedule (as the original was).
        seed: initialisation and data-order seed.
        device: where to train.
        progress: ``progress(fraction, message)``.
        cache: look up and write the disk cache.

    Returns:
        The retrained model in eval mode (source "shipped" or "cache" when it was loaded).
    """
    config = replace(TrainConfig.default(split.dataset.name, model, seed), seed=seed)
    return retrain_from_scratch(split.dataset, split.retain_train, config,
                                data_key=f"{split.dataset.fingerprint()}-train", device=device,
                                progress=progress, cache=cache, test=split.dataset.test())


def reference_source(split: ForgetSplit, model: str, *, seed: int = 0) -> str | None:
    """Where :func:`retrained_reference` would read the model from ("shipped", "cache"), or None: it trains."""
    config = replace(TrainConfig.default(split.dataset.name, model, seed), seed=seed)
    return retrained_source(split.dataset, split.retain_train, config, data_key=f"{split.dataset.fingerprint()}-train")

