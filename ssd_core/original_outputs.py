"""The original model's logits on every image, kept on disk and, for the big shipped models, shipped.

They are the same for every forget request, and on large data they are the costliest part of a "before":
Fashion-MNIST's 70,000 images take about 10 s on 2 CPU cores, on every CLI run and on the page's first
**All images**. An entry is found in memory, then in the user cache (``<cache dir>/outputs``), then in the
package (``checkpoints/shipped/outputs``, built by ``scripts/build_checkpoints.py``).

A stored entry is used only when it is what this machine computes: on reading, the first and the last batch of
each split are run again and must equal the stored rows bitwise (another CPU's arithmetic can differ in the last
bits; every batch between runs the same kernels as the first). Otherwise, or when the file is damaged, the
logits are computed again and written to the user cache, so a cached "before" is always the one a fresh pass
gives.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .data import ForgetSplit, Subset
from .importance import model_fingerprint
from .metrics import SplitOutputs, eval_batch_size, logits_of
from .train import write_atomically

log = logging.getLogger(__name__)

SHIPPED_OUTPUTS = Path(__file__).resolve().parent / "checkpoints" / "shipped" / "outputs"
_MEMORY: OrderedDict[str, SplitOutputs] = OrderedDict()
_IN_MEMORY = 4  # originals whose logits a process keeps (Fashion-MNIST's are 2.8 MB)


def outputs_key(model: nn.Module, split: ForgetSplit, device: torch.device | str, model_key: str | None = None) -> str:
    """The cache key: model, data, device type and batch size (what the logits are a function of)."""
    batch = eval_batch_size(split.train)
    return f"{model_key or model_fingerprint(model)}-{split.dataset.fingerprint()}-{torch.device(device).type}-b{batch}"


def original_outputs(model: nn.Module, split: ForgetSplit, device: torch.device | str = "cpu",
                     model_key: str | None = None, *, keep: bool = True) -> SplitOutputs:
    """``model``'s logits on the whole train and test splits, as :func:`ssd_core.metrics.split_outputs` computes
    them, read from a cache where one holds them for this machine. ``model_key``: its
    :func:`~ssd_core.importance.model_fingerprint` when the caller has it. ``keep=False`` keeps computed logits
    neither in memory nor on disk (a user's upload on a shared server)."""
    if not keep:
        return SplitOutputs(logits_of(model, split.train, device), logits_of(model, split.test, device))
    key = outputs_key(model, split, device, model_key)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    from .train import cache_dir

    cached = cache_dir() / "outputs" / f"{key}.safetensors"
    for path in (cached, SHIPPED_OUTPUTS / f"{key}.safetensors"):
        found = _read(path, model, split, device)
        if found is not None:
            return _remember(key, found)
    outputs = SplitOutputs(logits_of(model, split.train, device), logits_of(model, split.test, device))
    try:
        save_outputs(outputs, cached)
    except OSError as exc:
        log.warning("could not write the original's logits to %s: %s", cached, exc)
    return _remember(key, outputs)


def save_outputs(outputs: SplitOutputs, path: Path) -> None:
    """Write logits where :func:`original_outputs` reads them (the cache, or the shipped folder), under a
    temporary name first, so a reader (another process) never sees half a file."""
    from safetensors.torch import save_file

    tensors = {"train": outputs.train_logits.contiguous(), "test": outputs.test_logits.contiguous()}
    write_atomically(path, lambda partial: save_file(tensors, str(partial)))


def _read(path: Path, model: nn.Module, split: ForgetSplit, device: torch.device | str) -> SplitOutputs | None:
    """The stored logits at ``path`` when they are whole and this machine's (see the module docstring), else None."""
    if not path.is_file():
        return None
    try:
        from safetensors.torch import load_file

        stored = load_file(str(path))
        outputs = SplitOutputs(stored["train"], stored["test"])
    except Exception as exc:  # noqa: BLE001 - a damaged file is computed again
        log.warning("ignoring unreadable logits %s: %s", path, exc)
        return None
    for data, logits in ((split.train, outputs.train_logits), (split.test, outputs.test_logits)):
        if not _agrees(model, data, logits, device):
            log.info("the logits in %s are not this machine's arithmetic (or not this model's): computing them", path)
            return None
    return outputs


def _agrees(model: nn.Module, data: Subset, logits: torch.Tensor, device: torch.device | str) -> bool:
    """Whether ``logits`` has a row per image and its first and last batch are bitwise what ``model`` gives now."""
    if logits.dim() != 2 or len(logits) != len(data):
        return False
    if len(data) == 0:
        return True
    batch = eval_batch_size(data)
    last = (len(data) - 1) // batch * batch
    # one call, the same batches as the full pass: rows [0, batch) and the tail from ``last``
    rows = torch.cat([torch.arange(0, min(batch, last)), torch.arange(last, len(data))])
    probe = Subset(data.x[rows], data.y[rows], data.indices[rows])
    return torch.equal(logits_of(model, probe, device, batch), logits[rows])


def clear_memory() -> None:
    """Forget the logits kept in memory (the disk and the package keep theirs)."""
    _MEMORY.clear()


def _remember(key: str, outputs: SplitOutputs) -> SplitOutputs:
    _MEMORY[key] = outputs
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _IN_MEMORY:
        _MEMORY.popitem(last=False)
    return outputs
