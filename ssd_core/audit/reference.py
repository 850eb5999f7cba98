"""The retrained model, the audit's reference: a fresh model trained on Dr, cached on disk.

It depends on (dataset, architecture, training schedule, forget request, seed), so it is cached per
request under ``<cache>/retrained`` and a second audit of the same request (any method) loads it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import torch

from ..data import ForgetSplit
from ..progress import OptionalProgress, report
from ..train import TrainConfig, TrainedModel, _load_cached, cache_dir, checkpoint_key, save_checkpoint, train_model


def reference_key(split: ForgetSplit, config: TrainConfig) -> str:
    """File stem of the retrained model for this request and schedule (seed included)."""
    base = checkpoint_key(split.dataset, config)
    request = json.dumps(split.request.to_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256(f"{base}|{request}".encode()).hexdigest()[:12]
    return f"{split.dataset.name}-{config.model}-retrained-{digest}"


def retrained_reference(split: ForgetSplit, model: str, *, seed: int = 0, device: str | torch.device = "cpu",
                        progress: OptionalProgress = None, cache: bool = True) -> TrainedModel:
    """A fresh ``model`` trained on the request's retain set with seed ``seed`` (cached on disk).

    Args:
        split: the forget split (its retain-train set is the training data).
        model: the architecture, trained with its default schedule (as the original was).
        seed: initialisation and data-order seed.
        device: where to train.
        progress: ``progress(fraction, message)``.
        cache: look up and write the disk cache.

    Returns:
        The retrained model in eval mode (source "cache" when it was loaded).
    """
    config = replace(TrainConfig.default(split.dataset.name, model, seed), seed=seed)
    stem = cache_dir() / "retrained" / reference_key(split, config)
    if cache:
        found = _load_cached(stem, split.dataset, config, "cache")
        if found is not None:
            report(progress, 1.0, "loaded the cached retrained model")
            return found
    trained = train_model(split.dataset, config, data=split.retain_train, device=device, progress=progress)
    if cache:
        save_checkpoint(trained, stem, split.dataset.fingerprint())
    return trained
