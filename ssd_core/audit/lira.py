"""Per-example membership inference: offline LiRA (Carlini et al. 2022).

Shadow models are trained on random halves of the training set D: with K shadows every training
example is in exactly K/2 of them (a seeded assignment). For each shadow we keep only the
logit-scaled confidence of the true label, phi = log(p_y / (1 - p_y)) = z_y - logsumexp(z_j, j != y),
on every training and test image; that is all offline LiRA needs, so shadows are a few hundred
KB and depend only on (dataset, architecture, training config, seed, K), never on the request.
They are built once, cached on disk and shipped for digits/smallcnn and Fashion-MNIST/smallcnn.

How many shadows, trained how (:func:`shadow_plan`): on small training sets (digits, shapes) K = 16
with the original's own schedule. From LARGE_TRAIN training images on (Fashion-MNIST: 60,000), K = 8
trained for LARGE_SHADOW_EPOCHS epochs each (a 15-epoch shadow costs about 5 minutes on 2 CPU cores):
shorter training memorises less, so these shadows are somewhat less confident on their members than the
original is, which blunts the attack (a lower bound on exposure, not an upper one); the audit says so.

For a model under audit, the score of an example x is Phi(z), z = (phi(x) - mu_out(x)) / sigma, where
mu_out(x) is the mean of phi over the shadows that did not train on x and sigma is the standard
deviation of (phi - mu_out) pooled over all examples ("fixed variance", the LiRA paper's choice
when there are few shadows). High score: x looks like a training member.

How it differs from the population MIA: that one fits one threshold on softmax entropy for all
examples together, so an example that is easy for every model (a typical digit) looks like a
member whether or not it was trained on. LiRA calibrates each example against models that never
saw it, which is what makes a per-example claim ("this image is still exposed") possible.

The attack tells forget-train from held-out images of the same kind: for class requests the
non-members are the forget class's test images (images of another class would be told apart by
their class, not by membership); for random and picked samples, all test images. AUC 0.5 means
the forget set looks like unseen data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import ForgetSplit, ImageDataset
from ..metrics import SplitOutputs, logits_of
from ..progress import OptionalProgress, report, scaled

log = logging.getLogger(__name__)

LIRA_SHADOWS = 16  # K on small training sets (digits, shapes)
LARGE_TRAIN = 20_000  # from this many training images on, shadows are fewer and shorter
LARGE_SHADOWS = 8
LARGE_SHADOW_EPOCHS = 4
LIRA_CODE_VERSION = 1
EXPOSED_SHOWN = 8


@dataclass
class ShadowSet:
    """Shadow confidences: ``in_mask[k, i]`` is True when shadow k trained on training image i."""

    dataset_fingerprint: str
    model: str
    config: dict
    seed: int
    in_mask: torch.Tensor  # bool (K, N_train)
    train_phi: torch.Tensor  # float32 (K, N_train)
    test_phi: torch.Tensor  # float32 (K, N_test)
    seconds: float = 0.0
    source: str = "built"  # "built", "cache" or "shipped"

    @property
    def count(self) -> int:
        return int(self.in_mask.shape[0])


@dataclass(frozen=True)
class MembershipResult:
    """How well LiRA tells forget-train (members) from matched test images (non-members)."""

    auc: float | None
    tpr_at_1_fpr: float | None
    tpr_at_5_fpr: float | None
    n_members: int
    n_non_members: int
    exposed: list[int]  # training indices of the most exposed forget examples, highest score first
    exposed_scores: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ShadowPlan:
    """How many shadow models an audit uses for a dataset, their training schedule, and why."""

    count: int
    config: dict  # a TrainConfig as a dict (part of the shadows' key)
    note: str


def shadow_plan(dataset: ImageDataset, model: str, seed: int = 0) -> ShadowPlan:
    """K and the shadows' schedule for ``dataset`` (see the module docstring)."""
    from ..train import TrainConfig

    config = TrainConfig.default(dataset.name, model, seed)
    if len(dataset.train_y) < LARGE_TRAIN:
        return ShadowPlan(LIRA_SHADOWS, asdict(config), f"{LIRA_SHADOWS} shadow models, each trained like the "
                          f"original ({config.epochs} epochs) on a random half of the training set.")
    short = replace(config, epochs=min(config.epochs, LARGE_SHADOW_EPOCHS))
    return ShadowPlan(LARGE_SHADOWS, asdict(short), f"{LARGE_SHADOWS} shadow models, each trained for {short.epochs} "
                      f"epochs (the original: {config.epochs}) on a random half of the {len(dataset.train_y):,} training "
                      "images, to keep them affordable on a CPU; shorter training memorises less, so the attack is, "
                      "if anything, weaker than one with fully trained shadows.")


def scaled_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """phi = log(p_y / (1 - p_y)) per row, computed from logits without overflow."""
    z = logits.double()
    true = z.gather(1, labels.view(-1, 1)).squeeze(1)
    others = z.scatter(1, labels.view(-1, 1), float("-inf"))
    return (true - torch.logsumexp(others, dim=1)).float()


def shadow_assignment(n: int, count: int, seed: int) -> torch.Tensor:
    """(count, n) bool: each example is in exactly count / 2 shadows (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    ranks = torch.rand(count, n, generator=generator).argsort(0).argsort(0)
    return ranks < count // 2


def shadow_key(dataset: ImageDataset, model: str, config: dict, seed: int, count: int) -> str:
    payload = json.dumps({"data": dataset.fingerprint(), "model": model, "config": config, "seed": seed,
                          "count": count, "code": LIRA_CODE_VERSION}, sort_keys=True)
    return f"{dataset.name}-{model}-lira{count}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def _folders() -> list[tuple[Path, str]]:
    from ..train import SHIPPED_CHECKPOINTS, cache_dir

    return [(SHIPPED_CHECKPOINTS, "shipped"), (cache_dir() / "lira", "cache")]


def save_shadows(shadows: ShadowSet, path: Path) -> None:
    """Write a shadow set as one safetensors file (tensors + JSON metadata)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"dataset_fingerprint": shadows.dataset_fingerprint, "model": shadows.model, "seed": str(shadows.seed),
            "config": json.dumps(shadows.config, sort_keys=True), "seconds": str(shadows.seconds)}
    save_file({"in_mask": shadows.in_mask.to(torch.uint8), "train_phi": shadows.train_phi.contiguous(),
               "test_phi": shadows.test_phi.contiguous()}, str(path), metadata=meta)


def load_shadows(path: Path, source: str = "cache") -> ShadowSet:
    """Read a shadow set written by :func:`save_shadows` (safetensors: no code runs)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {name: fh.get_tensor(name) for name in ("in_mask", "train_phi", "test_phi")}
    return ShadowSet(meta["dataset_fingerprint"], meta["model"], json.loads(meta["config"]), int(meta["seed"]),
                     tensors["in_mask"].bool(), tensors["train_phi"].float(), tensors["test_phi"].float(),
                     float(meta.get("seconds", 0.0)), source)


def find_shadows(dataset: ImageDataset, model: str, *, count: int | None = None, seed: int = 0,
                 config: dict | None = None) -> ShadowSet | None:
    """Shipped or cached shadows for this setting (default: :func:`shadow_plan`'s), or None."""
    plan = shadow_plan(dataset, model, seed)
    count = count or plan.count
    config = config or plan.config
    key = shadow_key(dataset, model, config, seed, count)
    for folder, source in _folders():
        path = folder / f"{key}.lira.safetensors"
        if path.exists():
            try:
                return load_shadows(path, source)
            except Exception as exc:  # noqa: BLE001 - a damaged cache file is rebuilt, not fatal
                log.warning("ignoring unreadable shadow file %s: %s", path, exc)
    return None


def build_shadows(dataset: ImageDataset, model: str, *, count: int | None = None, seed: int = 0,
                  device: torch.device | str = "cpu", progress: OptionalProgress = None,
                  config=None, cache: bool = True) -> ShadowSet:
    """Train ``count`` shadow models on seeded halves of the training set (or load them).

    Args:
        dataset: the data (D = its training split).
        model: the architecture (trained with its default schedule, as the original was).
        count: K, even; each training image is in exactly K / 2 shadows (default: :func:`shadow_plan`'s).
        seed: seeds the halves and each shadow's training (shadow j: seed * 1000 + j + 1).
        device: where to train.
        progress: ``progress(fraction, message)``.
        config: a :class:`~ssd_core.train.TrainConfig` (default: :func:`shadow_plan`'s).
        cache: look up and write the disk cache.

    Returns:
        The shadows' membership masks and scaled confidences on the train and test splits.
    """
    import time

    from ..train import TrainConfig, train_model

    plan = shadow_plan(dataset, model, seed)
    count = count or plan.count
    if count < 2 or count % 2:
        from ..errors import InputError

        raise InputError(f"LiRA needs an even number of shadow models (at least 2); got {count}.")
    train_config = config or TrainConfig(**plan.config)
    config_dict = asdict(train_config)
    if cache:
        found = find_shadows(dataset, model, count=count, seed=seed, config=config_dict)
        if found is not None:
            report(progress, 1.0, f"loaded {found.source} shadow models")
            return found
    start = time.perf_counter()
    train = dataset.train()
    mask = shadow_assignment(len(train), count, seed)
    train_phi, test_phi = [], []
    for j in range(count):
        step = scaled(progress, j / count, (j + 1) / count)
        report(step, 0.0, f"shadow model {j + 1} of {count}")
        trained = train_model(dataset, replace(train_config, seed=seed * 1000 + j + 1), data=train.select(mask[j]),
                              device=device, progress=step)
        train_phi.append(scaled_confidence(logits_of(trained.model, train, device), train.y))
        test_phi.append(scaled_confidence(logits_of(trained.model, dataset.test(), device), dataset.test_y))
    shadows = ShadowSet(dataset.fingerprint(), model, config_dict, seed, mask, torch.stack(train_phi),
                        torch.stack(test_phi), time.perf_counter() - start, "built")
    if cache:
        from ..train import cache_dir

        save_shadows(shadows, cache_dir() / "lira" / f"{shadow_key(dataset, model, config_dict, seed, count)}.lira.safetensors")
    report(progress, 1.0, f"built {count} shadow models")
    return shadows


def lira_scores(shadows: ShadowSet, train_phi: torch.Tensor, test_phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Offline LiRA statistics z = (phi - mu_out) / sigma for every training and test image; the
    membership score is Phi(z). AUC and TPR are computed on z itself: the same ranking, without
    Phi's saturation (far below the shadows, Phi(z) is 0.0 in float64 for every image and every
    comparison would be a tie)."""
    out_train = ~shadows.in_mask
    mu_train = (shadows.train_phi * out_train).sum(0) / out_train.sum(0).clamp_min(1)
    mu_test = shadows.test_phi.mean(0)
    residuals = torch.cat([(shadows.train_phi - mu_train)[out_train], (shadows.test_phi - mu_test).flatten()])
    sigma = float(residuals.double().std().clamp_min(1e-6))
    return (train_phi.double() - mu_train.double()) / sigma, (test_phi.double() - mu_test.double()) / sigma


def auc(members: np.ndarray, non_members: np.ndarray) -> float | None:
    """Area under the ROC curve: P(member score > non-member score), ties counted half."""
    if len(members) == 0 or len(non_members) == 0:
        return None
    scores = np.concatenate([members, non_members])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    m, n = len(members), len(non_members)
    return float((ranks[:m].sum() - m * (m + 1) / 2.0) / (m * n))


def tpr_at_fpr(members: np.ndarray, non_members: np.ndarray, fpr: float) -> float | None:
    """Fraction of members above the threshold that lets at most ``fpr`` of non-members through."""
    if len(members) == 0 or len(non_members) == 0:
        return None
    allowed = int(math.floor(fpr * len(non_members)))
    threshold = np.sort(non_members)[::-1][allowed] if allowed < len(non_members) else -np.inf
    return float((members > threshold).mean())


def membership(model: nn.Module, split: ForgetSplit, shadows: ShadowSet, device: torch.device | str = "cpu",
               max_non_members: int | None = None, outputs: SplitOutputs | None = None) -> MembershipResult:
    """LiRA on ``model``: forget-train (members) against matched test images (see the module docstring).
    ``outputs``: the model's logits on every image when the caller has them (no further pass)."""
    dataset = split.dataset
    if shadows.dataset_fingerprint != dataset.fingerprint():
        from ..errors import InputError

        raise InputError("These shadow models were built for other data.")
    outputs = outputs or SplitOutputs(logits_of(model, dataset.train(), device), logits_of(model, dataset.test(), device))
    train_phi = scaled_confidence(outputs.train_logits, dataset.train_y)
    test_phi = scaled_confidence(outputs.test_logits, dataset.test_y)
    train_score, test_score = lira_scores(shadows, train_phi, test_phi)
    non_member_index = split.forget_test.indices if len(split.forget_test) else torch.arange(len(dataset.test_y))
    if max_non_members is not None and len(non_member_index) > max_non_members:
        generator = torch.Generator().manual_seed(0)
        non_member_index = non_member_index[torch.randperm(len(non_member_index), generator=generator)[:max_non_members]]
    members = train_score[split.forget_train.indices].numpy()
    non_members = test_score[non_member_index].numpy()
    top = np.argsort(-members, kind="mergesort")[:EXPOSED_SHOWN]
    normal = torch.distributions.Normal(0.0, 1.0)
    probability = normal.cdf(torch.from_numpy(members[top])).tolist()
    return MembershipResult(
        auc=auc(members, non_members),
        tpr_at_1_fpr=tpr_at_fpr(members, non_members, 0.01),
        tpr_at_5_fpr=tpr_at_fpr(members, non_members, 0.05),
        n_members=len(members),
        n_non_members=len(non_members),
        exposed=[int(split.forget_train.indices[i]) for i in top],
        exposed_scores=[float(p) for p in probability],
    )
