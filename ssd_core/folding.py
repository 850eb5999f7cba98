"""A model's evaluation copy with each batch norm folded into the convolution before it.

In evaluation a batch norm is a fixed affine map per channel, ``(z - mean) / sqrt(var + eps) * weight + bias``,
so a convolution followed by one is a single convolution with weights ``W * s`` and bias
``bias - mean * s`` (``s = weight / sqrt(var + eps)``): the same function, one pass over the activations fewer.
On 2 CPU cores the batch norms took a fifth of a shapes/resnet18_narrow forward pass.

The folded copy's logits differ from the unfolded model's by float rounding (at most 6e-6 on shapes' test
images, no prediction changed; ``tests/test_folding.py``). Every evaluation on the CPU runs it
(:func:`ssd_core.metrics.evaluation_model`), so all numbers of one model come from the same arithmetic and the
bitwise checks (the prefix shortcut, the cached original logits) compare like with like.

A model's copy (its *twin*) is built once, by a trace, and kept while the model lives; it is loaded from the
model's current parameters at every use (about a millisecond for 700k parameters), so a scratch model
dampened in place is always evaluated as it is now. Models without a foldable pair, or that ``torch.fx`` cannot
trace, have no twin.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import fx, nn

from .tracing import trace


def _foldable(graph: fx.Graph, modules: dict[str, nn.Module]) -> list[tuple[fx.Node, fx.Node]]:
    """(conv, batch norm) node pairs where the batch norm reads only the convolution's output, nothing else reads
    that output, each module is called once, both are the plain torch modules, and the batch norm normalises with
    running statistics."""
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        bn, conv = modules[str(node.target)], node.args[0]
        # exactly these types: a subclass may change its forward (timm's StdConv2d standardises its weights,
        # its BatchNormAct2d applies an activation), and then the fold would compute another function
        if not (type(bn) is nn.BatchNorm2d and bn.track_running_stats and bn.running_mean is not None
                and bn.running_var is not None):
            continue
        if not (isinstance(conv, fx.Node) and conv.op == "call_module" and len(conv.users) == 1
                and type(modules[str(conv.target)]) is nn.Conv2d):
            continue
        if calls[str(node.target)] == 1 and calls[str(conv.target)] == 1:
            pairs.append((conv, node))
    return pairs


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


class FoldedTwin:
    """The folded evaluation copy of one model (see the module docstring).

    Attributes:
        module: the copy, a ``torch.fx.GraphModule`` in eval mode, conv weights in channels_last layout.
        sources: for each parameter of ``module``, the model's parameters it is computed from (a folded
            convolution's weight and bias come from the convolution's and the batch norm's parameters).
        lock: held while the copy is loaded and run (:meth:`loaded`), so two threads never share it mid-pass.
    """

    def __init__(self, model: nn.Module, graph: fx.Graph, pairs: list[tuple[fx.Node, fx.Node]]) -> None:
        root = copy.deepcopy(model)
        self._pairs: list[tuple[str, str, nn.Conv2d]] = []
        for conv_node, bn_node in pairs:
            conv_name, bn_name = str(conv_node.target), str(bn_node.target)
            folded = copy.deepcopy(root.get_submodule(conv_name))
            assert isinstance(folded, nn.Conv2d)
            weight = folded.weight
            folded.bias = nn.Parameter(torch.zeros(folded.out_channels, dtype=weight.dtype, device=weight.device))
            _set_module(root, conv_name, folded)
            bn_node.replace_all_uses_with(conv_node)
            graph.erase_node(bn_node)
            self._pairs.append((conv_name, bn_name, folded))
        graph.lint()
        module = fx.GraphModule(root, graph)
        module.delete_all_unused_submodules()
        self.module = module.eval()
        from .metrics import to_channels_last

        to_channels_last(self.module)
        folded_names = {f"{conv}.{part}" for conv, _, _ in self._pairs for part in ("weight", "bias")}
        self._copied = [(name, tensor) for name, tensor in (*self.module.named_parameters(), *self.module.named_buffers())
                        if name not in folded_names]
        self.sources: dict[str, tuple[str, ...]] = {name: (name,) for name, _ in self.module.named_parameters()}
        for conv_name, bn_name, _ in self._pairs:
            origin = tuple(f"{m}.{p}" for m in (conv_name, bn_name) for p in ("weight", "bias"))
            self.sources[f"{conv_name}.weight"] = self.sources[f"{conv_name}.bias"] = origin
        _SOURCES[self.module] = self.sources
        self.lock = threading.RLock()
        self._depth = 0  # loaded() blocks open in the thread holding the lock

    @torch.no_grad()
    def load(self, model: nn.Module) -> fx.GraphModule:
        """The copy with ``model``'s current parameters and statistics folded in (all of them, every time: about
        2 ms on shapes/resnet18_narrow, and nothing to get wrong about what changed)."""
        state: dict[str, torch.Tensor] = dict(model.named_parameters())
        state.update(model.named_buffers())
        for name, tensor in self._copied:
            tensor.copy_(state[name])
        for conv_name, bn_name, folded in self._pairs:
            mean, var = state[f"{bn_name}.running_mean"], state[f"{bn_name}.running_var"]
            eps = float(model.get_submodule(bn_name).eps)  # type: ignore[arg-type]
            scale = torch.rsqrt(var + eps)
            shift = -mean * scale
            if f"{bn_name}.weight" in state:  # affine
                scale = scale * state[f"{bn_name}.weight"]
                shift = state[f"{bn_name}.bias"] - mean * scale
            conv_bias = state.get(f"{conv_name}.bias")
            folded.weight.copy_(state[f"{conv_name}.weight"] * scale.reshape(-1, 1, 1, 1))
            folded.bias.copy_(shift if conv_bias is None else conv_bias * scale + shift)  # type: ignore[union-attr]
        return self.module

    @contextmanager
    def loaded(self, model: nn.Module) -> Iterator[fx.GraphModule]:
        """:meth:`load` under :attr:`lock`, held until the caller is done with the copy. Nested in this thread (the
        train and test passes of one evaluation, :func:`held`), the copy is loaded once: the model does not change
        while one evaluation reads it."""
        with self.lock:
            if self._depth == 0:
                self.load(model)
            self._depth += 1
            try:
                yield self.module
            finally:
                self._depth -= 1


_SOURCES: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[str, ...]]] = weakref.WeakKeyDictionary()
_TWINS: weakref.WeakKeyDictionary[nn.Module, FoldedTwin | None] = weakref.WeakKeyDictionary()
_TWINS_LOCK = threading.Lock()


def twin_of(model: nn.Module) -> FoldedTwin | None:
    """``model``'s folded twin, built on first use and kept while ``model`` lives (None: nothing to fold)."""
    with _TWINS_LOCK:
        if model in _TWINS:
            return _TWINS[model]
        twin = None
        if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
            was_training = model.training
            model.eval()
            graph = trace(model)
            model.train(was_training)
            pairs = _foldable(graph, dict(model.named_modules())) if graph is not None else []
            if graph is not None and pairs:
                with torch.inference_mode(False):  # plain tensors, which load() may update outside inference mode
                    twin = FoldedTwin(model, graph, pairs)
        _TWINS[model] = twin
        return twin


def held(model: nn.Module) -> AbstractContextManager[object]:
    """Load ``model``'s twin once for the CPU evaluations inside the block (nothing where it has none)."""
    twin = twin_of(model)
    return nullcontext() if twin is None else twin.loaded(model)


def parameter_sources(module: nn.Module) -> dict[str, tuple[str, ...]] | None:
    """For a twin's module (what :func:`ssd_core.metrics.evaluation_model` may run), its :attr:`FoldedTwin.sources`;
    None for any other module (its parameters are the model's own)."""
    return _SOURCES.get(module)
