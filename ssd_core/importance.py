"""Parameter-importance estimators and the cache of full-data importances.

Estimators (all return ``{parameter name: tensor shaped like it}``, model in eval mode, data
unshuffled, no augmentation):

- ``fisher`` (default, as in the SSD authors' experiments): for each mini-batch the gradient of
  the batch-mean cross-entropy, squared elementwise, summed over batches, divided by the number
  of batches. Depends on the batch size.
- ``fisher_exact``: the per-sample empirical Fisher, mean over samples of squared per-sample
  gradients (torch.func). Independent of batch size and order.
- ``lossfree`` (LFSSD): no labels; objective = batch mean of the squared L2 norm of the logits;
  accumulates |gradient| per batch, divided by the number of batches.
- ``mas``: Memory Aware Synapses (used by instance-wise unlearning): |gradient| of the batch mean
  of the (unsquared) L2 norm of the logits, averaged over batches.

The full-data importance I_D depends only on (model weights, data, estimator, batch size), so
:class:`ImportanceCache` keeps it in memory and on disk; a new forget request then costs one pass
over the forget set.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .data import Subset, batches, to_float
from .errors import InputError
from .memory import check_batch_size, check_training_memory
from .progress import OptionalProgress, report

log = logging.getLogger(__name__)

# Part of every cached importance's key: bump it when a change to the estimators changes their
# values, so an importance computed by older code is never read back.
IMPORTANCE_CODE_VERSION = 2
# I_D shipped with the package for the shipped checkpoints (a property of model + training data), under
# the cache's own keys: a first forget request on them costs the forget set's pass only. For Fashion-MNIST's
# default model the I_f of every class ships too (scripts/build_checkpoints.py), so its first class request
# costs no importance pass at all.
SHIPPED_IMPORTANCE = Path(__file__).resolve().parent / "checkpoints" / "shipped" / "importance"

Estimator = Literal["fisher", "fisher_exact", "lossfree", "mas"]
ESTIMATORS: tuple[str, ...] = ("fisher", "fisher_exact", "lossfree", "mas")
ImportanceDict = dict[str, torch.Tensor]


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters importance and dampening act on (buffers are never included)."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _objective(estimator: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if estimator == "fisher":
        return F.cross_entropy(logits, labels)
    if estimator == "lossfree":
        return logits.pow(2).sum(dim=1).mean()
    if estimator == "mas":
        return logits.norm(dim=1).mean()
    _check_estimator(estimator)
    raise InputError(f"The estimator '{estimator}' has no batch objective.")


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise InputError(f"Unknown importance estimator '{estimator}'; choose one of {', '.join(ESTIMATORS)}.")


AUTOCAST = ("bf16",)  # reduced precisions the importance pass can run its forward and backward in


def _check_autocast(autocast: str | None) -> None:
    if autocast is not None and autocast not in AUTOCAST:
        raise InputError(f"Unknown autocast '{str(autocast)[:20]}'; choose one of {', '.join(AUTOCAST)} (or none).")


def _precision(device: torch.device, autocast: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bfloat16 for ``autocast='bf16'`` (matmuls and convolutions in bf16, the
    parameters, their gradients and the sums stay float32), else nothing."""
    if autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compute_importance(
    model: nn.Module,
    data: Subset,
    estimator: str = "fisher",
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: OptionalProgress = None,
    autocast: str | None = None,
) -> ImportanceDict:
    """Importance of every trainable parameter of ``model`` on ``data`` (see module docstring).

    The model is not modified (gradients are taken with ``torch.autograd.grad``, so ``.grad``
    stays untouched); its train/eval mode is restored afterwards.

    Args:
        model: the model (evaluated in eval mode).
        data: the images and labels to average over, unshuffled.
        estimator: "fisher" (batch), "fisher_exact" (per sample), "lossfree" or "mas".
        batch_size: images per batch (the batch Fisher depends on it).
        device: where to compute (default: the model's device).
        progress: ``progress(fraction, message)`` callback.
        autocast: "bf16" runs the forward and backward under ``torch.autocast`` in bfloat16 (faster
            on GPUs; the selection it gives can differ a little from float32's, see
            :func:`ssd_core.dampening.selection_changes`); None: float32.

    Returns:
        One non-negative tensor per trainable parameter name, shaped like the parameter.
    """
    _check_estimator(estimator)
    if len(data) == 0:
        raise InputError("Cannot compute importance on an empty set of samples.")
    totals, count = importance_sums(model, data, estimator, batch_size, device, progress, autocast)
    return {name: t / count for name, t in totals.items()}


def batch_share(n_samples: int, batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous run of whole batches (as a sample range [start, stop)) rank ``rank`` of
    ``world_size`` takes: batches are the single process's, split as evenly as possible."""
    n_batches = (n_samples + batch_size - 1) // batch_size
    first = n_batches * rank // world_size
    last = n_batches * (rank + 1) // world_size
    return min(first * batch_size, n_samples), min(last * batch_size, n_samples)


def importance_sums(
    model: nn.Module,
    data: Subset,
    estimator: str = "fisher",
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: OptionalProgress = None,
    autocast: str | None = None,
) -> tuple[ImportanceDict, int]:
    """The un-normalised importance: per-batch squared gradients (or |gradients|) summed over the
    batches of ``data``, and how many there were (samples for ``fisher_exact``). The importance
    is ``sums / count``; processes that each took a share of the batches add their sums and
    counts first (:func:`distributed_importance`), so the division happens once."""
    _check_estimator(estimator)
    check_batch_size(batch_size, "The importance batch size")
    if len(data):
        check_training_memory(model, tuple(data.x.shape[1:]), min(batch_size, len(data)), "importance",
                              doing="computing", hint="pick a smaller batch size")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n_batches = (len(data) + batch_size - 1) // batch_size
    return _accumulate(model, batches(data, batch_size, device), n_batches, len(data), estimator, device, progress,
                       autocast)


def importance_from_loader(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    estimator: str = "fisher",
    device: torch.device | str | None = None,
    progress: OptionalProgress = None,
    n_batches: int | None = None,
    n_images: int | None = None,
    autocast: str | None = None,
) -> ImportanceDict:
    """:func:`compute_importance` over batches read one at a time (a ``DataLoader`` over
    :class:`~ssd_core.data.streaming.StreamingImages`): the same numbers for the same batches, with
    memory that depends on the batch size, not on the number of images. Progress reports images/s
    and the time left.

    Args:
        model: the model (evaluated in eval mode).
        loader: (uint8 or float images, labels) batches, unshuffled.
        estimator: "fisher", "fisher_exact", "lossfree" or "mas".
        device: where to compute (default: the model's device).
        progress: ``progress(fraction, message)``.
        n_batches, n_images: for progress (default: ``len(loader)`` and ``len(loader.dataset)``).
        autocast: "bf16" or None, as for :func:`compute_importance`.

    Returns:
        One tensor per trainable parameter name.
    """
    _check_estimator(estimator)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n_batches = n_batches if n_batches is not None else len(loader)  # type: ignore[arg-type]
    n_images = n_images if n_images is not None else len(getattr(loader, "dataset", ()))
    on_device = ((to_float(x, device), torch.as_tensor(y).to(device)) for x, y in loader)
    sums, count = _accumulate(model, on_device, n_batches, n_images, estimator, device, progress, autocast)
    if count == 0:
        raise InputError("Cannot compute importance on an empty set of samples.")
    return {name: t / count for name, t in sums.items()}


def _accumulate(
    model: nn.Module,
    batch_iter: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_batches: int,
    n_images: int,
    estimator: str,
    device: torch.device,
    progress: OptionalProgress,
    autocast: str | None = None,
) -> tuple[ImportanceDict, int]:
    """Per-batch squared gradients (|gradients| for lossfree and mas; per-sample squares for
    fisher_exact) summed over ``batch_iter``, and the count to divide by (batches; samples for
    fisher_exact)."""
    _check_autocast(autocast)
    if estimator == "fisher_exact":
        return _per_sample_fisher(model, batch_iter, n_batches, n_images, device, progress, autocast)
    named = trainable_parameters(model)
    params = [p for _, p in named]
    totals = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
    was_training = model.training
    model.eval()
    square = estimator == "fisher"
    count = 0
    seen = 0
    start = time.perf_counter()
    try:
        for i, (x, y) in enumerate(batch_iter):
            with _precision(device, autocast):
                loss = _objective(estimator, model(x).float(), y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            grads = tuple(g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params))
            if square:
                torch._foreach_addcmul_(totals, grads, grads)
            else:
                torch._foreach_add_(totals, torch._foreach_abs(grads))
            count += 1
            seen += len(y)
            if progress is not None and (i % 8 == 0 or i == n_batches - 1):
                report(progress, (i + 1) / max(1, n_batches), _rate_message(i + 1, n_batches, seen, n_images, start))
    finally:
        model.train(was_training)
    return {name: t for (name, _), t in zip(named, totals)}, count


def _rate_message(done: int, n_batches: int, seen: int, n_images: int, start: float) -> str:
    """'importance: batch 12/80, 850 images/s, 6 s left' (the rate once a batch is done)."""
    elapsed = time.perf_counter() - start
    message = f"importance: batch {done}/{n_batches}"
    if elapsed > 0 and seen:
        rate = seen / elapsed
        left = max(0.0, (n_images - seen) / rate) if n_images else 0.0
        message += f", {rate:,.0f} images/s, {left:,.0f} s left"
    return message


def distributed_importance(
    model: nn.Module,
    data: Subset,
    estimator: str = "fisher",
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: OptionalProgress = None,
    autocast: str | None = None,
) -> ImportanceDict:
    """:func:`compute_importance` across the processes of an initialised ``torch.distributed``
    group (gloo on CPU, NCCL on GPUs): each rank takes a contiguous share of whole batches
    (:func:`batch_share`), sums its per-batch terms, the sums and the batch count are
    all-reduced (SUM), and every rank divides once, so the result equals the single process's
    (up to float summation order). Without an initialised group it is :func:`compute_importance`."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return compute_importance(model, data, estimator, batch_size, device, progress, autocast)
    if len(data) == 0:
        raise InputError("Cannot compute importance on an empty set of samples.")
    rank, world = dist.get_rank(), dist.get_world_size()
    start, stop = batch_share(len(data), batch_size, rank, world)
    share = data.select(torch.arange(start, stop))
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if len(share):
        sums, count = importance_sums(model, share, estimator, batch_size, device, progress, autocast)
    else:
        sums, count = {name: torch.zeros_like(p) for name, p in trainable_parameters(model)}, 0
    names = list(sums)
    flat = torch.cat([sums[n].reshape(-1).double() for n in names] + [torch.tensor([float(count)], device=device,
                                                                                    dtype=torch.float64)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    total = float(flat[-1])
    out: ImportanceDict = {}
    offset = 0
    for name in names:
        size = sums[name].numel()
        out[name] = (flat[offset:offset + size] / total).to(sums[name].dtype).view_as(sums[name])
        offset += size
    return out


def _per_sample_fisher(
    model: nn.Module, batch_iter: Iterable[tuple[torch.Tensor, torch.Tensor]], n_batches: int, n_images: int,
    device: torch.device, progress: OptionalProgress, autocast: str | None = None,
) -> tuple[ImportanceDict, int]:
    """Sum over samples of squared per-sample cross-entropy gradients (vmap over the batch), and
    the number of samples."""
    from torch.func import functional_call, grad, vmap

    was_training = model.training
    model.eval()
    params = {name: p.detach() for name, p in trainable_parameters(model)}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def sample_loss(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(logits.float(), y.unsqueeze(0))

    per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    seen = 0
    start = time.perf_counter()
    try:
        for i, (x, y) in enumerate(batch_iter):
            with _precision(device, autocast):
                grads = per_sample_grads(params, x, y)
            for name, g in grads.items():
                totals[name].add_(g.pow(2).sum(0))
            seen += len(y)
            report(progress, (i + 1) / max(1, n_batches), _rate_message(i + 1, n_batches, seen, n_images, start))
    finally:
        model.train(was_training)
    return totals, seen


def model_fingerprint(model: nn.Module) -> str:
    """A hash of the model's parameters and buffers (what a trained model *is*), non-persistent buffers
    included: two Hugging Face wrappers with the same weights but another normalisation compute other
    importances, so they must not share a cache entry."""
    digest = hashlib.sha256()
    state = model.state_dict()
    extra = {f"{name} (not saved)": b for name, b in model.named_buffers() if name not in state}
    for name, tensor in (*state.items(), *extra.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class ImportanceCache:
    """Full-data importances kept in memory (a few, most recent) and on disk (safetensors).

    Cached tensors are shared: never modify what :meth:`full_importance` returns.
    """

    def __init__(self, directory: Path | None = None, max_in_memory: int = 8) -> None:
        self.directory = directory
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[str, ImportanceDict] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _disk_path(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{key}.safetensors"

    def full_importance(
        self,
        model: nn.Module,
        data: Subset,
        data_key: str,
        estimator: str = "fisher",
        batch_size: int = 64,
        device: torch.device | str | None = None,
        progress: OptionalProgress = None,
        model_key: str | None = None,
        keep_on_disk: bool = True,
    ) -> ImportanceDict:
        """The importance of ``model`` on ``data`` (I_D on the training set, I_f on a forget set); ``data_key`` must
        identify ``data`` (e.g. a dataset fingerprint, or :meth:`forget_data_key`).
        ``keep_on_disk=False`` keeps a computed importance in memory only (a forget set nobody asks for twice)."""
        key = self.key(model, data_key, estimator, batch_size, model_key)
        device = torch.device(device) if device is not None else next(model.parameters()).device
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._on(self._memory[key], device)
        path = self._disk_path(key)
        shipped = SHIPPED_IMPORTANCE / f"{key}.safetensors"
        if shipped.is_file() and (path is None or not path.exists()):
            path = shipped  # read-only package data; a recomputed one (damaged file) goes to the cache below
        if path is not None and path.exists():
            try:
                from safetensors.torch import load_file

                stored = load_file(str(path))  # safetensors returns names sorted; keep the model's order
                loaded = {name: stored[name] for name, _ in trainable_parameters(model) if name in stored}
                self._remember(key, loaded)
                self.hits += 1
                report(progress, 1.0, "importance loaded from cache")
                return self._on(loaded, device)
            except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed
                log.warning("ignoring unreadable importance cache %s: %s", path, exc)
                path = self._disk_path(key)
        self.misses += 1
        start = time.perf_counter()
        computed = compute_importance(model, data, estimator, batch_size, device, progress)
        log.info("computed the importance %s in %.2fs", key, time.perf_counter() - start)
        self._remember(key, computed)
        if path is not None and keep_on_disk:
            try:
                from safetensors.torch import save_file

                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({k: v.detach().cpu().contiguous() for k, v in computed.items()}, str(path))
            except OSError as exc:
                log.warning("could not write importance cache %s: %s", path, exc)
        return computed

    @staticmethod
    def forget_data_key(data_key: str, forget: Subset) -> str:
        """The data key of a forget set: its training data's key and which of its images it holds (I_f is the
        same function of model and images as I_D, so it is cached under the same kind of key)."""
        digest = hashlib.sha256(forget.indices.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()[:16]
        return f"{data_key}-forget-{digest}"

    @staticmethod
    def key(model: nn.Module, data_key: str, estimator: str, batch_size: int, model_key: str | None = None) -> str:
        """The cache key of I_D: model, data, estimator, batch size and the estimator code version."""
        return f"{model_key or model_fingerprint(model)}-{data_key}-{estimator}-b{batch_size}-v{IMPORTANCE_CODE_VERSION}"

    def store(self, key: str, importance: ImportanceDict) -> Path | None:
        """Keep an importance computed elsewhere (e.g. by ``python -m ssd_core importance`` under
        torchrun) in memory and on disk, where :meth:`full_importance` will find it."""
        self._remember(key, importance)
        path = self._disk_path(key)
        if path is not None:
            from safetensors.torch import save_file

            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in importance.items()}, str(path))
        return path

    @staticmethod
    def _on(importance: ImportanceDict, device: torch.device) -> ImportanceDict:
        return {k: v if v.device == device else v.to(device) for k, v in importance.items()}

    def _remember(self, key: str, value: ImportanceDict) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)

    def clear(self) -> None:
        self._memory.clear()


_default_cache: ImportanceCache | None = None


def default_cache() -> ImportanceCache:
    """The process-wide cache (memory + ``<cache dir>/importance`` on disk)."""
    global _default_cache
    if _default_cache is None:
        from .train import cache_dir

        _default_cache = ImportanceCache(cache_dir() / "importance")
    return _default_cache


def hessian_diagonal(
    model: nn.Module,
    data: Subset,
    n_probes: int = 8,
    batch_size: int = 128,
    device: torch.device | str | None = None,
    progress: OptionalProgress = None,
    seed: int = 0,
) -> ImportanceDict:
    """Hutchinson estimate of the diagonal of the Hessian of the cross-entropy training loss.

    diag(H) = E_v[v * (H v)] for Rademacher vectors v (entries +-1 with equal probability). For
    every mini-batch of ``data`` (unshuffled, model in eval mode) the gradient of the batch-mean
    cross-entropy is taken with ``create_graph=True``; each of ``n_probes`` probes v then costs
    one Hessian-vector product, ``torch.autograd.grad(grad, params, grad_outputs=v)`` (double
    backward). The estimate is the mean of v * Hv over probes and batches, so it is the diagonal
    of the mean per-batch Hessian. Entries can be negative (the loss is not convex); sharpness
    rankings usually use the value itself. Probes are drawn from a ``torch.Generator`` seeded with
    ``seed`` (on the CPU, then moved), so the same seed gives the same estimate on any device.

    Like :func:`compute_importance`, ``.grad`` is left untouched and the train/eval mode restored.
    """
    if len(data) == 0:
        raise InputError("Cannot estimate the Hessian on an empty set of samples.")
    if n_probes < 1:
        raise InputError("The Hutchinson estimate needs at least one probe vector.")
    if batch_size < 1:
        raise InputError("The batch size must be at least 1.")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    named = trainable_parameters(model)
    params = [p for _, p in named]
    totals = [torch.zeros_like(p) for p in params]
    generator = torch.Generator().manual_seed(seed)
    n_batches = (len(data) + batch_size - 1) // batch_size
    total_products = n_batches * n_probes
    done = 0
    was_training = model.training
    model.eval()
    try:
        for x, y in batches(data, batch_size, device):
            loss = F.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            used = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
            for probe in range(n_probes):
                vectors = [
                    (torch.randint(0, 2, params[i].shape, generator=generator, dtype=torch.int8).to(device).float() * 2 - 1)
                    .to(params[i].dtype)
                    for i, _ in used
                ]
                products = torch.autograd.grad(
                    [g for _, g in used],
                    [params[i] for i, _ in used],
                    grad_outputs=vectors,
                    retain_graph=probe < n_probes - 1,
                    allow_unused=True,
                )
                for (i, _), v, hv in zip(used, vectors, products):
                    if hv is not None:
                        totals[i].add_(v * hv)
                done += 1
                if progress is not None and (done % 8 == 0 or done == total_products):
                    report(progress, done / total_products, f"Hessian diagonal: product {done}/{total_products}")
    finally:
        model.train(was_training)
    scale = 1.0 / float(total_products)
    return {name: t.mul_(scale) for (name, _), t in zip(named, totals)}
