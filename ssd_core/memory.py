"""Memory is budgeted before it is allocated.

Every path that decodes, converts or trains on user data (an uploaded zip, a server folder, the
MNIST/CIFAR files, training a model on them) estimates its peak from the sizes the input declares
(count x side x side x channels x bytes, for each conversion it does) and refuses with one
sentence when that is above the budget, instead of letting the process be killed halfway.

The budget is ``UNLEARNING_LAB_MEMORY_BUDGET_MB`` (default 2048 MB: on a 24 GB server shared by a
class of 30, the heavy-job gate lets two such jobs run at once, and every session keeps room).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch import nn

from .errors import InputError

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_BUDGET_MB = 2048
CHUNK_BYTES = 64 * MB  # conversions (uint8 -> float32) run in chunks of at most this much
MAX_BATCH_SIZE = 4096  # images per batch anywhere a user sets one (links, CLI, library): more only costs memory
MAX_WORKERS = 32  # data-loading processes (--workers): each is a copy of the interpreter


def memory_budget() -> int:
    """The most bytes one job may allocate for user data: ``$UNLEARNING_LAB_MEMORY_BUDGET_MB``."""
    from .settings import settings

    return int(settings().memory_budget_mb * MB)


def size_text(n: float) -> str:
    """Bytes for a person: '1.5 GB', '320 MB', '12 KB', '10 bytes'."""
    if n >= 1024 * MB:
        return f"{n / (1024 * MB):.3g} GB"
    if n >= MB:
        return f"{n / MB:.4g} MB"
    if n >= 1024:
        return f"{n / 1024:.4g} KB"
    return f"{int(n)} bytes"


def check_memory(needed: float, what: str, hint: str = "") -> None:
    """Refuse (InputError, one sentence) when ``needed`` bytes exceed the budget."""
    budget = memory_budget()
    if needed > budget:
        raise InputError(
            f"{what[0].upper()}{what[1:]} would need about {size_text(needed)} of memory, more than the "
            f"{size_text(budget)} this server allows (UNLEARNING_LAB_MEMORY_BUDGET_MB)" + (f"; {hint}" if hint else "") + "."
        )


def images_bytes(count: int, channels: int, height: int, width: int, itemsize: int = 1) -> int:
    """Bytes of ``count`` images of ``channels`` x ``height`` x ``width`` with ``itemsize`` bytes per value."""
    return int(count) * int(channels) * int(height) * int(width) * int(itemsize)


def chunk_rows(row_bytes: int, budget: int = CHUNK_BYTES) -> int:
    """How many rows of ``row_bytes`` fit in one conversion chunk (at least one)."""
    return max(1, budget // max(1, row_bytes))


SMALL_PROBE_VALUES = 1 << 20  # one sample's values up to which the probe runs for real on the CPU
SMALL_PROBE_BYTES = 64 << 20  # and the model's weights up to which copying it there costs nothing worth saving


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """The bytes one sample's forward pass produces (every module's tensor outputs), measured with
    forward hooks on a copy of the model; the model is not touched. Small models on small inputs run the
    sample on the CPU (milliseconds); anything larger runs on PyTorch's 'meta' device, where shapes are
    computed but nothing is allocated. Not 'meta' always: its first use imports torch._dynamo, 3.4 s on a
    2-core machine, paid by every CLI run and by a fresh server's first screen."""
    import copy

    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    device = "cpu" if math.prod(input_shape) <= SMALL_PROBE_VALUES and weights <= SMALL_PROBE_BYTES else "meta"
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        for tensor in _tensors(output):
            total += tensor.numel() * tensor.element_size()

    probe = copy.deepcopy(model).to(device).eval()
    for module in probe.modules():
        if module is not probe:
            module.register_forward_hook(count)
    with torch.no_grad():
        probe(torch.zeros((1, *input_shape), device=device))
    return total


def _tensors(output: object) -> Iterable[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, (list, tuple)):
        for item in output:
            yield from _tensors(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _tensors(item)


def training_bytes(model: nn.Module, input_shape: tuple[int, ...], batch_size: int) -> int:
    """Peak memory of training ``model`` on batches of ``input_shape`` (an estimate on the safe
    side): the batch, every activation kept for the backward pass and its gradient, and the
    weights with their gradients and two optimiser states."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    per_sample = activation_bytes(model, input_shape) + 4 * math.prod(input_shape)
    return int(batch_size * per_sample * 2 + params * 4)


def check_training_memory(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, what: str,
                          doing: str = "training", hint: str = "pick a smaller image size") -> None:
    """Refuse ``doing`` ``what`` when the estimated peak of one forward and backward pass (``training_bytes``)
    is above the budget. The importance pass costs what a training step does, so it is checked the same way."""
    c, h, w = (tuple(input_shape) + (1, 1, 1))[:3]
    check_memory(training_bytes(model, input_shape, batch_size), f"{doing} {what} on {c}x{h}x{w} images", hint)


def check_batch_size(batch_size: int, what: str = "The batch size") -> None:
    """Refuse a batch size outside 1..MAX_BATCH_SIZE (InputError, one sentence), before anything is allocated."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InputError(f"{what} must be from 1 to {MAX_BATCH_SIZE:,}; got {batch_size:,}.")


def check_workers(workers: int) -> None:
    """Refuse more data-loading processes than MAX_WORKERS (each is a copy of the interpreter)."""
    if not 0 <= workers <= MAX_WORKERS:
        raise InputError(f"The number of data-loading processes (--workers) must be from 0 to {MAX_WORKERS}; "
                         f"got {workers:,}.")
