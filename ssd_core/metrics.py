"""Evaluation: accuracies, per-class accuracy, confusion matrix, MIA, ZRF, gap to retrain.

One path computes every number, for the CLI, the sweep, the pages and the reports:
:class:`Evaluator` runs one batched forward pass over the images it needs (the whole training and
test splits, or a fixed, seeded sample of at most ``max_per_subset`` of each subset) and reads the
subsets off by index. :func:`evaluate` and :func:`evaluate_outputs` are its two common uses.
Accuracies are fractions in [0, 1]; a metric over an empty subset is None.

MIA (as in the SSD paper): the per-sample entropy of the softmax output is the only feature; a
logistic regression (class_weight="balanced") learns retain-train samples = member (1) against
test samples = non-member (0); the reported value is the fraction of forget-train samples it
predicts to be members. Lower means the forget set looks less like training data.

ZRF (Chundawat et al.): ZRF = 1 - (1/|Df|) * sum_x JS(p_model(x), p_random(x)), with
JS(p, q) = 0.5 * KL(p || m) + 0.5 * KL(q || m), m = (p + q) / 2, natural logarithms, where
p_random is a randomly initialised model of the same architecture (seeded). JS lies in
[0, ln 2], so ZRF lies in [1 - ln 2, 1]; 1 means the model behaves like a random one on Df.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ForgetSplit, Subset, to_float

ACCURACY_KEYS = ("retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc")


@dataclass
class Evaluation:
    """Every metric of one model on one forget split."""

    retain_test_acc: float | None
    forget_test_acc: float | None
    retain_train_acc: float | None
    forget_train_acc: float | None
    test_acc: float | None
    mia: float | None
    per_class_acc: list[float | None]
    confusion: list[list[int]]
    zrf: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict[str, float | None]:
        """The scalar metrics only."""
        return {k: getattr(self, k) for k in (*ACCURACY_KEYS, "mia", "zrf")}


@dataclass
class SplitOutputs:
    """Logits of a model on the whole training and test splits (on the CPU)."""

    train_logits: torch.Tensor
    test_logits: torch.Tensor
    extra: dict = field(default_factory=dict)


def eval_batch_size(data: Subset) -> int:
    """Images per forward pass: measured fastest on 2 CPU cores (about 256 for 8x8 digits, 64 for
    32x32 images; larger batches fall out of cache and get slower)."""
    pixels = int(np.prod(data.x.shape[2:])) if data.x.dim() >= 3 else 1
    return 256 if pixels <= 16 * 16 else 64


@contextmanager
def evaluation_model(model: nn.Module, device: torch.device | str) -> Iterator[nn.Module]:
    """The model to run inference with, in eval mode; every evaluation goes through here, so all metrics of one
    model come from the same arithmetic. The caller's model, possibly shared by several sessions, is never
    changed. On the CPU:

    - a model with batch norms after its convolutions runs as its folded twin (:mod:`ssd_core.folding`: one pass
      over the activations fewer per batch norm), loaded from the model's current parameters and held by this
      thread until the ``with`` block ends;
    - otherwise conv weights run in channels_last layout (convolutions 1.5x faster, max-pooling 9x): the model
      itself where they already are (scratch models, :func:`to_channels_last`), else a private copy."""
    if torch.device(device).type != "cpu":
        yield model.eval()
        return
    from .folding import twin_of

    twin = twin_of(model)
    if twin is not None:
        with twin.loaded(model) as folded:
            yield folded
        return
    yield (model if is_channels_last(model) else to_channels_last(copy.deepcopy(model))).eval()


def _conv_weights(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.dim() == 4]


def is_channels_last(model: nn.Module) -> bool:
    """True when every 4-D weight is in channels_last layout (or the model has none)."""
    return all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(model))


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put ``model``'s conv weights in channels_last layout, in place (values unchanged). For
    private scratch models that are evaluated many times on the CPU, so each evaluation skips
    the copy :func:`logits_of` would otherwise make."""
    if _conv_weights(model):
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
    return model


@torch.no_grad()
def logits_of(model: nn.Module, data: Subset, device: torch.device | str, batch_size: int | None = None) -> torch.Tensor:
    """Logits for every image of ``data`` in eval mode, batched, returned on the CPU."""
    if len(data) == 0:
        return torch.empty(0, 0)
    model.eval()
    batch_size = batch_size or eval_batch_size(data)
    out = []
    with evaluation_model(model, device) as runner:
        for start in range(0, len(data), batch_size):
            out.append(runner(to_float(data.x[start : start + batch_size], device)).float().cpu())
    return torch.cat(out)


def split_outputs(model: nn.Module, split: ForgetSplit, device: torch.device | str, batch_size: int | None = None) -> SplitOutputs:
    """``model``'s logits on the whole train and test splits (one forward pass each)."""
    return SplitOutputs(logits_of(model, split.train, device, batch_size), logits_of(model, split.test, device, batch_size))


@torch.no_grad()
def scan_loader(model: nn.Module, loader: Any, num_classes: int,
                device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over batches read one at a time (a ``DataLoader`` over
    :class:`~ssd_core.data.streaming.StreamingImages`): (correct, total) per class and each image's
    softmax entropy (one float per image: the MIA's feature). Memory does not grow with the images
    beyond those floats."""
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    total = torch.zeros(num_classes, dtype=torch.long)
    entropies = []
    with torch.no_grad():
        for x, y in loader:
            labels = torch.as_tensor(y)
            logits = model(to_float(x, device))
            hit = logits.argmax(1).cpu() == labels
            total += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[hit], minlength=num_classes)
            entropies.append(entropy(logits).cpu())
    return correct, total, torch.cat(entropies) if entropies else torch.empty(0)


def accuracy_from_loader(model: nn.Module, loader: Any, num_classes: int,
                         device: torch.device | str = "cpu") -> tuple[float | None, list[float | None]]:
    """Accuracy and per-class accuracy over batches read one at a time (see :func:`scan_loader`).

    Returns:
        (accuracy, per-class accuracy); None where there were no images.
    """
    correct, total, _ = scan_loader(model, loader, num_classes, device)
    overall = float(correct.sum()) / float(total.sum()) if int(total.sum()) else None
    return overall, [float(c) / float(t) if int(t) else None for c, t in zip(correct, total, strict=True)]


def _acc(logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    if len(labels) == 0:
        return None
    return int((logits.argmax(1) == labels).sum()) / len(labels)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample entropy (nats) of the softmax distribution."""
    log_p = F.log_softmax(logits.float(), dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample (no reduction), in float32."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def logistic_regression_1d(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[float, float]:
    """(weight, bias) of a class-balanced, L2-regularised logistic regression on one feature.

    The same objective as scikit-learn's ``LogisticRegression(class_weight="balanced", C=c)``:
    ``C * sum_i w_i * log(1 + exp(-s_i * (a * x_i + b))) + a**2 / 2`` with ``s_i = +-1`` and
    ``w_i = n / (2 * n_class)``, solved exactly by Newton's method on the two unknowns (about
    0.3 ms, against 10 ms for the general solver, which matters when a sweep runs it 100 times).
    The objective is strictly convex, so the optimum is unique.
    """
    x = np.asarray(x, dtype=np.float64)
    sign = np.where(np.asarray(y) > 0, 1.0, -1.0)
    n_pos, n_neg = int((sign > 0).sum()), int((sign < 0).sum())
    weight = np.where(sign > 0, len(x) / (2.0 * n_pos), len(x) / (2.0 * n_neg))
    a = b = 0.0
    for _ in range(100):
        margin = sign * (a * x + b)
        p = 0.5 * (1.0 - np.tanh(0.5 * margin))  # sigmoid(-margin), without overflow
        g = -c * weight * sign * p
        h = c * weight * p * (1.0 - p)
        grad = np.array([float((g * x).sum()) + a, float(g.sum())])
        hess = np.array([[float((h * x * x).sum()) + 1.0, float((h * x).sum())], [float((h * x).sum()), float(h.sum())]])
        if hess[1, 1] <= 0.0:  # every sample saturated: nothing more to learn
            break
        step = np.linalg.solve(hess, grad)
        a, b = a - float(step[0]), b - float(step[1])
        if abs(step[0]) + abs(step[1]) < 1e-12 * (1.0 + abs(a) + abs(b)):
            break
    return a, b


def mia_from_entropies(retain: torch.Tensor, test: torch.Tensor, forget: torch.Tensor) -> float | None:
    """Fraction of forget samples a member-vs-non-member logistic regression calls members."""
    if len(forget) == 0 or len(retain) == 0 or len(test) == 0:
        return None
    features = torch.cat([retain, test]).double().numpy()
    labels = np.concatenate([np.ones(len(retain)), np.zeros(len(test))])
    a, b = logistic_regression_1d(features, labels)
    return float((a * forget.double().numpy() + b > 0).mean())


def js_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence (nats) between two softmax distributions."""
    p = F.softmax(p_logits.float(), dim=1)
    q = F.softmax(q_logits.float(), dim=1)
    m = 0.5 * (p + q)
    log_m = m.clamp_min(1e-12).log()
    kl_pm = (p * (p.clamp_min(1e-12).log() - log_m)).sum(1)
    kl_qm = (q * (q.clamp_min(1e-12).log() - log_m)).sum(1)
    return 0.5 * (kl_pm + kl_qm)


def zrf_score(model_logits: torch.Tensor, random_logits: torch.Tensor) -> float | None:
    """ZRF = 1 - mean JS divergence to a random model (see module docstring)."""
    if len(model_logits) == 0:
        return None
    return float(1.0 - js_divergence(model_logits, random_logits).mean())


def random_reference_logits(model_name: str, split: ForgetSplit, device: torch.device | str, seed: int = 0) -> torch.Tensor:
    """Logits of a randomly initialised same-architecture model on the forget-train set (for ZRF)."""
    from .models import build_for_dataset

    reference = build_for_dataset(model_name, split.dataset, seed=seed).to(device)
    return logits_of(reference, split.forget_train, device)


SUBSETS = ("forget_train", "retain_train", "forget_test", "retain_test")


def _subsample(subset: Subset, limit: int | None, seed: int, stratified: bool = False) -> torch.Tensor:
    """Indices (into the split) of at most ``limit`` members of ``subset``, a fixed seeded sample. ``stratified``:
    each class keeps its share of the subset (largest remainders), so a sampled retain accuracy weighs the
    classes as the whole subset does."""
    indices = subset.indices
    if limit is None or len(indices) <= limit:
        return indices
    generator = torch.Generator().manual_seed(seed)
    if not stratified:
        return indices[torch.randperm(len(indices), generator=generator)[:limit].sort().values]
    classes, counts = subset.y.unique(return_counts=True)
    quota = counts.double() * limit / len(indices)
    take = quota.floor().long()
    take[torch.argsort(take.double() - quota, stable=True)[:limit - int(take.sum())]] += 1
    picked = []
    for c, k in zip(classes.tolist(), take.tolist()):
        members = (subset.y == c).nonzero().flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return indices[torch.cat(picked).sort().values]


LIVE_FULL_IMAGES = 3000  # up to this many training + test images a slider move reads every one (digits: 1,797)


def live_sample_size(split: ForgetSplit) -> int | None:
    """Images per card (forget/retain x train/test) a dashboard slider move reads at most on ``split``: None (all)
    on small data or with UNLEARNING_LAB_LIVE_SAMPLE=0, else that setting. The CLI's ``--eval-sample N`` reads
    the same fixed, class-stratified sample (seeded by the run seed), so it prints the same numbers."""
    from .settings import settings

    per_card = settings().live_sample
    if per_card <= 0 or len(split.train) + len(split.test) <= LIVE_FULL_IMAGES:
        return None
    return per_card


def accuracy_interval(accuracy: float | None, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson 95% interval of an accuracy measured on ``n`` images (None without a number). What a sampled
    card's number may be off by from the whole subset's (for a fixed sample, a sampling interval)."""
    if accuracy is None or n <= 0 or math.isnan(accuracy):
        return None
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class Evaluator:
    """Evaluates models on one forget split, with one forward pass over the images it needs.

    Args:
        split: the forget split.
        device: where to run the model.
        max_per_subset: None evaluates every image; a number evaluates a fixed sample of at most
            that many images of each subset (forget/retain x train/test; seeds ``seed`` to
            ``seed + 3``), for sweeps that must stay fast.
        seed: the sample's seed.
        subsets: which subsets to evaluate (the others' metrics are None; MIA needs retain-train,
            forget-train and a test subset).
        with_mia: whether to compute the membership-inference score.
        random_forget_logits: a random model's logits on forget-train, for ZRF (full forget-train only).
        batch_size: images per forward pass (default: what is fastest for the image size).
        stratified: the sample keeps each class's share of its subset (the live page's and ``--eval-sample``'s
            sample); False draws it uniformly (the sweeps').
        shortcut_from: the original model of the dampened models to evaluate: on the CPU, a call that names the
            parameters that differ from it (``changed``) recomputes only the layers from the first of them on
            (:class:`ssd_core.prefix.PrefixCache`; bitwise the same logits).
    """

    reads_changed = True  # __call__ and outputs take ``changed`` (see ``shortcut_from``)

    def __init__(self, split: ForgetSplit, device: torch.device | str = "cpu", *, max_per_subset: int | None = None,
                 seed: int = 0, subsets: tuple[str, ...] = SUBSETS, with_mia: bool = True,
                 random_forget_logits: torch.Tensor | None = None, batch_size: int | None = None,
                 stratified: bool = False, shortcut_from: nn.Module | None = None) -> None:
        ds = split.dataset
        self.split, self.device, self.batch_size = split, device, batch_size
        self.max_per_subset = max_per_subset
        self._shortcut_from = shortcut_from
        self._prefix: tuple[Any, Any] | None = None
        self.with_mia = with_mia and {"forget_train", "retain_train"} <= set(subsets)
        self.random_forget_logits = random_forget_logits
        self.index = {name: _subsample(getattr(split, name), max_per_subset, seed + i, stratified)
                      for i, name in enumerate(SUBSETS) if name in subsets}
        self.full = max_per_subset is None and set(subsets) == set(SUBSETS)

        def union(names: tuple[str, ...], size: int) -> torch.Tensor:
            parts = [self.index[n] for n in names if n in self.index]
            return torch.cat(parts).sort().values if parts else torch.zeros(0, dtype=torch.long)

        self.train_index = torch.arange(len(ds.train_y)) if self.full else union(("forget_train", "retain_train"), len(ds.train_y))
        self.test_index = torch.arange(len(ds.test_y)) if self.full else union(("forget_test", "retain_test"), len(ds.test_y))
        self.train = Subset(ds.train_x[self.train_index], ds.train_y[self.train_index], self.train_index)
        self.test = Subset(ds.test_x[self.test_index], ds.test_y[self.test_index], self.test_index)
        self._train_pos = self._positions(self.train_index, len(ds.train_y))
        self._test_pos = self._positions(self.test_index, len(ds.test_y))

    @staticmethod
    def _positions(index: torch.Tensor, size: int) -> torch.Tensor:
        positions = torch.full((size,), -1, dtype=torch.long)
        positions[index] = torch.arange(len(index))
        return positions

    def sizes(self) -> dict[str, int]:
        """How many images of each subset are evaluated."""
        return {name: len(index) for name, index in self.index.items()}

    def _shortcuts(self) -> tuple[Any, Any] | None:
        """The prefix caches of the train and test images (built on first use; None off the CPU or without an
        original)."""
        if self._shortcut_from is None or torch.device(self.device).type != "cpu":
            return None
        if self._prefix is None:
            from .prefix import PrefixCache

            train, test = (PrefixCache(self._shortcut_from, data, self.batch_size or eval_batch_size(data), self.device)
                           for data in (self.train, self.test))
            self._prefix = (train, test)
        return self._prefix

    def outputs(self, model: nn.Module, changed: Sequence[str] | None = None) -> SplitOutputs:
        """The model's logits on the evaluated train and test images (all of them when full). ``changed``: the
        parameters in which ``model`` differs from ``shortcut_from`` (the layers before them are not recomputed)."""
        from .folding import held

        shortcuts = self._shortcuts() if changed is not None else None
        out = []
        with held(model) if torch.device(self.device).type == "cpu" else nullcontext():  # one load for both passes
            for i, data in enumerate((self.train, self.test)):
                found = shortcuts[i].logits(model, changed) if shortcuts is not None and changed is not None else None
                if found is None:
                    found = logits_of(model, data, self.device, self.batch_size) if len(data) else torch.empty(0, 0)
                out.append(found)
        return SplitOutputs(out[0], out[1])

    def from_outputs(self, outputs: SplitOutputs) -> Evaluation:
        """Every metric from logits :meth:`outputs` produced (or, when full, any model's full logits)."""
        ds = self.split.dataset
        train_logits, test_logits = outputs.train_logits, outputs.test_logits

        def rows(name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
            if name not in self.index:
                return None
            on_train = name.endswith("train")
            pos = (self._train_pos if on_train else self._test_pos)[self.index[name]]
            logits = train_logits if on_train else test_logits
            labels = (ds.train_y if on_train else ds.test_y)[self.index[name]]
            return logits[pos], labels

        def acc(name: str) -> float | None:
            got = rows(name)
            return None if got is None else _acc(*got)

        k = ds.num_classes
        test_labels = ds.test_y[self.test_index]
        confusion = torch.bincount(test_labels * k + test_logits.argmax(1), minlength=k * k).view(k, k) \
            if len(self.test_index) else torch.zeros(k, k, dtype=torch.long)
        per_class: list[float | None] = []
        for c in range(k):
            total = int(confusion[c].sum())
            per_class.append(float(confusion[c, c]) / total if total else None)
        mia = None
        if self.with_mia and len(self.test_index):
            retain, forget = rows("retain_train"), rows("forget_train")
            mia = mia_from_entropies(entropy(retain[0]), entropy(test_logits), entropy(forget[0]))  # type: ignore[index]
        zrf = None  # against the random model's logits on the whole forget set: not on a sample of it
        if self.random_forget_logits is not None and "forget_train" in self.index and \
                len(self.index["forget_train"]) == len(self.split.forget_train):
            zrf = zrf_score(rows("forget_train")[0], self.random_forget_logits)  # type: ignore[index]
        return Evaluation(
            retain_test_acc=acc("retain_test"),
            forget_test_acc=acc("forget_test"),
            retain_train_acc=acc("retain_train"),
            forget_train_acc=acc("forget_train"),
            # over the whole test split only: a sample's union of forget and retain images weighs them differently
            test_acc=_acc(test_logits, test_labels) if len(self.test_index) == len(ds.test_y) else None,
            mia=mia,
            per_class_acc=per_class,
            confusion=confusion.tolist(),
            zrf=zrf,
        )

    def __call__(self, model: nn.Module, changed: Sequence[str] | None = None) -> Evaluation:
        start = time.perf_counter()
        result = self.from_outputs(self.outputs(model, changed))
        result.seconds = time.perf_counter() - start
        return result


def evaluate(
    model: nn.Module,
    split: ForgetSplit,
    device: torch.device | str = "cpu",
    *,
    with_mia: bool = True,
    random_forget_logits: torch.Tensor | None = None,
    batch_size: int | None = None,
    max_per_subset: int | None = None,
    seed: int = 0,
    stratified: bool = False,
) -> Evaluation:
    """Every metric of ``model`` on ``split`` (see :class:`Evaluator`; all images unless bounded).

    Returns:
        Accuracies (forget/retain x train/test), per-class accuracy, confusion matrix, MIA and
        ZRF (None where a subset is empty or not evaluated).
    """
    return Evaluator(split, device, max_per_subset=max_per_subset, seed=seed, with_mia=with_mia,
                     random_forget_logits=random_forget_logits, batch_size=batch_size, stratified=stratified)(model)


def evaluate_outputs(
    outputs: SplitOutputs,
    split: ForgetSplit,
    *,
    with_mia: bool = True,
    random_forget_logits: torch.Tensor | None = None,
) -> Evaluation:
    """All metrics from a model's logits on the whole train and test splits (so figures and metrics
    share one forward pass)."""
    return Evaluator(split, with_mia=with_mia, random_forget_logits=random_forget_logits).from_outputs(outputs)


def gap_to_retrain(result: Evaluation, retrain: Evaluation) -> dict[str, float | None]:
    """|metric - retrain's metric| for each scalar metric (None where either is missing)."""
    gaps: dict[str, float | None] = {}
    for key, value in result.summary().items():
        reference = retrain.summary().get(key)
        gaps[key] = None if value is None or reference is None else abs(value - reference)
    return gaps


OVER_FORGETTING_TOLERANCE = 0.1  # forget accuracy this far below the retrained model's is flagged


def is_over_forgetting(result: Evaluation, retrain: Evaluation, tolerance: float = OVER_FORGETTING_TOLERANCE) -> bool:
    """Forget accuracy far below the retrained model's (it would itself reveal the forgetting)."""
    ours = result.forget_test_acc if result.forget_test_acc is not None else result.forget_train_acc
    gold = retrain.forget_test_acc if retrain.forget_test_acc is not None else retrain.forget_train_acc
    if ours is None or gold is None or math.isnan(ours) or math.isnan(gold):
        return False
    return ours < gold - tolerance
