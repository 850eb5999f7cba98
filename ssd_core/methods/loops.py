"""The loops and helpers the training-based unlearning methods share, written once.

- :func:`paired_update`: the step loop over paired retain and forget batches (NegGrad+, random
  labels, SalUn, SAPS), each method giving only its loss, optionally on a mask of entries.

- :func:`working_copy` / :func:`frozen_copy`: the input model is never touched; methods train a
  deep copy and read teachers from another frozen copy.
- :func:`seeded`: runs a block with the global RNGs seeded (and restored afterwards), so dropout
  or model initialisation inside a method is reproducible without side effects on the caller.
- :func:`shuffled_batches`: an endless stream of shuffled index batches drawn with a
  ``torch.Generator`` (data order is seeded and independent of the global RNG).
- :func:`architecture_name` / :func:`fresh_model_like`: which registered architecture a model is
  (matched by class and parameter names/shapes), and a freshly initialised one of it.
- :class:`Stopwatch`: wall-clock seconds per step, always with ``"total"``.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset, to_float
from ..errors import InputError
from ..progress import OptionalProgress, report


def working_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of ``model`` on ``device`` whose parameters all require gradients."""
    work = copy.deepcopy(model).to(device)
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    return work


def frozen_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy in eval mode with gradients off (a teacher or reference)."""
    frozen = copy.deepcopy(model).to(device).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
        p.grad = None
    return frozen


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Seed the global torch RNGs for the block, restoring their previous state afterwards."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda" and torch.cuda.is_available():
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled index batches over ``range(n)``, reshuffled on every pass."""
    if n < 1:
        raise InputError("Cannot draw batches from an empty set of samples.")
    batch_size = max(1, min(batch_size, n))
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2 and n > 1:
                continue  # BatchNorm cannot train on a single sample
            yield idx


def paired_batches(
    n_retain: int, n_forget: int, retain_batch_size: int, forget_batch_size: int, steps: int, generator: torch.Generator
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``steps`` pairs (step, retain indices, forget indices); each set is cycled, reshuffled per pass."""
    retain = shuffled_batches(n_retain, retain_batch_size, generator)
    forget = shuffled_batches(n_forget, forget_batch_size, generator)
    for step in range(steps):
        yield step, next(retain), next(forget)


def take(subset: Subset, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images and labels of ``subset[idx]`` on ``device``."""
    return to_float(subset.x[idx], device), subset.y[idx].to(device)


def random_other_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """For each label a uniformly random *different* class (on the labels' device)."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % num_classes


def sgd(params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.SGD:
    """The SGD optimiser the baselines share (momentum 0.9 unless told)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened outputs, batch mean, times T^2."""
    t = float(temperature)
    log_student = F.log_softmax(student_logits / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * (t * t)


def require_nonempty(subset: Subset, what: str, method: str) -> None:
    """InputError ("<method> needs a non-empty <what>.") when ``subset`` is empty."""
    if len(subset) == 0:
        raise InputError(f"{method} needs a non-empty {what}.")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimisation steps in one pass over ``n`` samples (the last batch is kept unless it has one sample)."""
    if n <= 1:
        return max(n, 1)
    full, rest = divmod(n, max(1, batch_size))
    return max(1, full + (1 if rest >= 2 else 0))


# ---------------------------------------------------------------------------------------------
# Paired retain/forget batches

StepLoss = Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]


def paired_update(
    work: nn.Module,
    retain: Subset,
    forget: Subset,
    step_loss: StepLoss,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    forget_batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    cosine: bool = False,
    masks: dict[str, torch.Tensor] | None = None,
    train_mode: bool = True,
    progress: OptionalProgress = None,
    label: str = "update",
) -> dict:
    """Train ``work`` in place for ``epochs`` passes over ``retain``, each step on a retain batch
    and a forget batch (the forget set is cycled, both reshuffled per pass, drawn from
    ``generator``): ``step_loss(work, xr, yr, xf, yf, generator) -> (loss, record)``.

    ``masks`` zeroes the gradient of every unselected entry (with no weight decay their momentum
    stays zero too); ``train_mode=False`` keeps BatchNorm's running statistics untouched;
    ``cosine`` decays the learning rate to 0. Returns the steps and a sparse loss history."""
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    total = epochs * steps_per_epoch(len(retain), batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total) if cosine else None
    work.train(train_mode)
    history = []
    for step, r_idx, f_idx in paired_batches(len(retain), len(forget), batch_size, forget_batch_size, total, generator):
        xr, yr = take(retain, r_idx, device)
        xf, yf = take(forget, f_idx, device)
        loss, record = step_loss(work, xr, yr, xf, yf, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if masks is not None:
            mask_gradients(named, masks)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if step % 10 == 0 or step == total - 1:
            values = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in record.items()}
            history.append({"step": step, **values})
            shown = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in values.items())
            report(progress, (step + 1) / total, f"{label} step {step + 1}/{total}, {shown}")
    work.eval()
    return {"steps": total, "history": history}


# ---------------------------------------------------------------------------------------------
# Masks over parameter entries


def top_fraction_mask(scores: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Boolean masks selecting exactly round(fraction * total) entries with the largest scores,
    ranked globally over all tensors (ties broken by position)."""
    names = list(scores)
    flat = torch.cat([scores[n].detach().reshape(-1).float() for n in names])
    k = int(round(fraction * flat.numel()))
    k = min(max(k, 1 if fraction > 0 else 0), flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, start = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = chosen[start : start + size].view_as(scores[n])
        start += size
    return masks


def mask_gradients(named_params: list[tuple[str, nn.Parameter]], masks: dict[str, torch.Tensor]) -> None:
    """Zero the gradient of every unselected entry (in place)."""
    for name, p in named_params:
        if p.grad is not None:
            p.grad.mul_(masks[name].to(p.grad.dtype))


@torch.no_grad()
def restore_unselected(model: nn.Module, original: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Copy every unselected entry back from ``original`` so it is bit-identical."""
    reference = dict(original.named_parameters())
    for name, p in model.named_parameters():
        if name in masks:
            p.copy_(torch.where(masks[name].to(p.device), p, reference[name].to(p.device)))


def per_tensor_fraction(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Selected fraction of each parameter tensor."""
    return {name: float(m.float().mean()) for name, m in masks.items()}


def per_layer_fraction(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Selected fraction per layer (module), pooling its weight and bias."""
    chosen: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for name, m in masks.items():
        layer = name.rsplit(".", 1)[0] if "." in name else name
        chosen[layer] = chosen.get(layer, 0) + int(m.sum())
        sizes[layer] = sizes.get(layer, 0) + m.numel()
    return {layer: chosen[layer] / sizes[layer] for layer in chosen}


def mask_summary(masks: dict[str, torch.Tensor]) -> dict[str, Any]:
    """How many entries a selection picked, in all and per layer and tensor (for diagnostics)."""
    selected = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return {
        "selected": selected,
        "total_parameters": total,
        "selected_fraction": selected / max(1, total),
        "per_layer_fraction": per_layer_fraction(masks),
        "per_tensor_fraction": per_tensor_fraction(masks),
    }


# ---------------------------------------------------------------------------------------------
# Architecture lookup


def _matches(candidate: nn.Module, model: nn.Module) -> bool:
    if type(candidate) is not type(model):
        return False
    if hasattr(model, "net") and type(getattr(candidate, "net", None)) is not type(model.net):
        return False
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in candidate.state_dict().items()}
    return ours == theirs


def architecture_name(model: nn.Module, dataset: Any, model_name: str = "") -> str:
    """The registry name of ``model``'s architecture.

    ``model_name`` wins when given (and must fit the model); otherwise each registered
    architecture is built for ``dataset`` on the meta device (no memory, no compute) and the one
    with the same classes and the same parameter/buffer names and shapes is returned.
    """
    from ..models import available_models, build_for_dataset, get_spec

    if model_name:
        get_spec(model_name)  # clear error for an unknown name
        names = [model_name]
    else:
        names = list(available_models())
    for name in names:
        try:
            with torch.device("meta"):
                candidate = build_for_dataset(name, dataset)
        except (InputError, RuntimeError, ValueError, TypeError):
            continue
        if _matches(candidate, model):
            return name
    if model_name:
        raise InputError(f"The model is not a {model_name} for {dataset.name}; give the architecture it was built with.")
    raise InputError(
        "Could not tell which registered architecture this model is; set the method option model_name."
    )


def fresh_model_like(
    model: nn.Module, dataset: Any, model_name: str = "", seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[nn.Module, str]:
    """A freshly initialised (seeded) model of ``model``'s architecture, and that architecture's name."""
    from ..models import build_for_dataset

    name = architecture_name(model, dataset, model_name)
    return build_for_dataset(name, dataset, seed=seed).to(device), name


# ---------------------------------------------------------------------------------------------
# Timing


class Stopwatch:
    """Wall-clock seconds per named step; :meth:`finish` adds ``"total"`` since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def finish(self) -> dict[str, float]:
        return {**self.seconds, "total": time.perf_counter() - self.start}
