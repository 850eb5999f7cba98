"""Logits of a dampened model on fixed images, computed from the first changed layer on.

SSD changes few parameter tensors (at the adaptive α on shapes/resnet18_narrow, none before ``layer3``).
Every operation before the first one that reads a changed tensor computes exactly what it computed for the
original model, so :class:`PrefixCache` traces the model once (``torch.fx``; the folded twin where it has batch
norms, :mod:`ssd_core.folding`, as every evaluation runs it), keeps, for its fixed images,
the values that cross that point (from the first pass that reaches it), and runs only the rest of the
graph: the same operations on the same inputs in the same batches, so the logits are bitwise those of a
full forward pass (``tests/test_prefix.py``). Models ``torch.fx`` cannot trace fall back to the usual
forward pass; cut points whose kept values would exceed the memory cap are computed but not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

from .data import Subset
from .data.dataset import to_float
from .folding import parameter_sources
from .tracing import trace

MAX_KEPT_MB = 64  # the kept values of all cut points, for all images
MAX_CUTS = 3  # cut points kept at once (a slider going back and forth crosses few)
MIN_SKIP = 0.2  # the shortcut is used when at least this share of the graph comes before the first change


def _copy(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else value


def _fetch(model: nn.Module, target: str) -> Any:
    value: Any = model
    for part in target.split("."):
        value = getattr(value, part)
    return value


class PrefixCache:
    """Logits of models that share the original's architecture on ``data``, recomputing only what follows the
    first changed parameter (see the module docstring).

    Args:
        original: the original model (traced for the graph and the names of its parameters); it and the models
            passed to :meth:`logits` run as :func:`ssd_core.metrics.logits_of` runs them
            (:func:`ssd_core.metrics.evaluation_model`).
        data: the fixed images.
        batch_size: images per forward pass (the same batches as :func:`ssd_core.metrics.logits_of`, so the
            numbers are the same).
        device: where to compute.
    """

    def __init__(self, original: nn.Module, data: Subset, batch_size: int, device: torch.device | str = "cpu") -> None:
        from .metrics import evaluation_model

        self.data, self.batch_size, self.device = data, batch_size, device
        with evaluation_model(original, device) as runner:  # as logits_of runs it (folded, channels_last)
            self.graph = runner.graph if isinstance(runner, fx.GraphModule) else trace(runner)
            sources = parameter_sources(runner)
            modules = dict(runner.named_modules())
        self.nodes: list[fx.Node] = list(self.graph.nodes) if self.graph is not None else []
        self.reads: dict[str, int] = {}  # the original's parameter name -> the first node that uses it
        for i, node in enumerate(self.nodes):
            names: Iterable[str] = ()
            if node.op == "call_module":
                prefix = f"{node.target}." if node.target else ""
                names = (prefix + n for n, _ in modules[str(node.target)].named_parameters())
            elif node.op == "get_attr":
                names = (str(node.target),)
            for name in names:
                for source in sources.get(name, (name,)) if sources is not None else (name,):
                    self.reads.setdefault(source, i)
        position = {n: i for i, n in enumerate(self.nodes)}
        self.dying: dict[int, list[fx.Node]] = {}  # node index -> the values no later node reads (freed there)
        for n in self.nodes:
            self.dying.setdefault(max([position[u] for u in n.users], default=position[n]), []).append(n)
        self._kept: OrderedDict[int, list[dict[fx.Node, torch.Tensor]]] = OrderedDict()  # cut -> per batch, values crossing it
        self._lock = threading.Lock()

    def cut(self, changed: Iterable[str]) -> int | None:
        """The index of the first node that reads a changed parameter (None: no shortcut applies)."""
        if self.graph is None:
            return None
        points = []
        for name in changed:
            if name not in self.reads:
                return None  # a parameter the graph does not name: evaluate everything
            points.append(self.reads[name])
        return min(points) if points else len(self.nodes) - 1

    def _batches(self) -> list[torch.Tensor]:
        return [to_float(self.data.x[s:s + self.batch_size], self.device) for s in range(0, len(self.data), self.batch_size)]

    def _run(self, model: nn.Module, nodes: list[fx.Node], env: dict[fx.Node, Any], x: torch.Tensor) -> Any:
        """Interpret ``nodes`` with ``model``'s modules, reading earlier values from ``env`` (filled in)."""
        modules = dict(model.named_modules())
        position = {n: i for i, n in enumerate(self.nodes)}
        for node in nodes:
            args = fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
            if node.op == "placeholder":
                env[node] = x
            elif node.op == "get_attr":
                env[node] = _fetch(model, str(node.target))
            elif node.op == "call_module":
                env[node] = modules[str(node.target)](*args, **kwargs)
            elif node.op == "call_function":
                env[node] = node.target(*args, **kwargs)  # type: ignore[operator]
            elif node.op == "call_method":
                env[node] = getattr(args[0], str(node.target))(*args[1:], **kwargs)
            elif node.op == "output":
                return args[0]
            for done in self.dying.get(position[node], ()):  # free what nothing later reads, as eager code does
                env.pop(done, None)
        return None

    def _kept_bytes(self) -> int:
        return sum(v.numel() * v.element_size() for kept in self._kept.values() for values in kept
                   for v in values.values() if isinstance(v, torch.Tensor))

    def _crossing(self, cut: int) -> list[fx.Node]:
        """The values computed before node ``cut`` that nodes from ``cut`` on read."""
        position = {n: i for i, n in enumerate(self.nodes)}
        return [n for n in self.nodes[:cut] if any(position[u] >= cut for u in n.users)]

    def logits(self, model: nn.Module, changed: Iterable[str]) -> torch.Tensor | None:
        """``model``'s logits on the images when it differs from the original only in ``changed`` parameters,
        or None where the shortcut does not apply (then evaluate the usual way).

        The pass starts from the latest kept cut point at or before this move's (or from the images), and keeps
        this move's own cut point on the way: the nodes before it read no changed parameter, so their values are
        the original's."""
        cut = self.cut(list(changed))
        if cut is None or cut < MIN_SKIP * len(self.nodes) or len(self.data) == 0:
            return None  # nothing worth skipping: the usual forward pass is faster than interpreting the graph
        from .metrics import evaluation_model

        with self._lock:
            begin = max((c for c in self._kept if c <= cut), default=0)
            start_values = self._kept.get(begin)
            if begin:
                self._kept.move_to_end(begin)
        crossing = self._crossing(cut) if begin != cut else []
        model.eval()
        out, kept, size = [], [], 0
        inputs = self._batches() if start_values is None else [torch.empty(0)] * len(start_values)
        with torch.inference_mode(), evaluation_model(model, self.device) as runner:  # the same arithmetic as logits_of
            for b, x in enumerate(inputs):
                # copies: an in-place operation after the cut (a ReLU(inplace=True)) must not change what is kept
                env: dict[fx.Node, Any] = {n: _copy(v) for n, v in start_values[b].items()} if start_values is not None else {}
                self._run(runner, self.nodes[begin:cut], env, x)
                if crossing:
                    values = {n: _copy(env[n]) for n in crossing}
                    size += sum(v.numel() * v.element_size() for v in values.values() if isinstance(v, torch.Tensor))
                    kept.append(values)
                out.append(self._run(runner, self.nodes[cut:], env, x).float().cpu())
        if crossing and size <= MAX_KEPT_MB * 2**20:
            with self._lock:
                self._kept[cut] = kept
                while len(self._kept) > MAX_CUTS or (len(self._kept) > 1 and self._kept_bytes() > MAX_KEPT_MB * 2**20):
                    self._kept.popitem(last=False)
        return torch.cat(out)
