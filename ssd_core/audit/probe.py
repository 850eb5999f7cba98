"""Representation probe: is the forgotten class still readable from the features?

A model can zero its output for a class while its penultimate features still separate that
class ("Are we truly forgetting?", Kim, Cha, Kim 2025). The probe takes the input of the model's
last linear layer (the registry's ``feature_layer``; by default the last ``nn.Linear``),
fits a multinomial logistic regression on the training set's features with every class
(standardised features, L2 penalty, full-batch L-BFGS from zeros: deterministic), and reports
its accuracy on the forget class's held-out (test) samples. The retrained model never saw that
class, so its probe accuracy is what "forgotten in the features" looks like on this data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Subset, to_float
from ..errors import InputError

PROBE_L2 = 1e-3  # penalty on the probe's weights (mean cross-entropy + PROBE_L2 * |W|^2)
PROBE_ITERATIONS = 200


def feature_layer(model: nn.Module, name: str = "") -> nn.Module:
    """The layer whose input is the penultimate feature vector: ``name`` if given (a module
    path inside ``model``), else the last ``nn.Linear`` (the classifier head of every registry
    architecture: smallcnn ``classifier.3``, resnet18 ``linear``, vit_tiny ``head``)."""
    modules = dict(model.named_modules())
    if name:
        for candidate in (name, f"net.{name}"):
            if candidate in modules:
                return modules[candidate]
        raise InputError(f"The model has no layer '{name}' to read features from.")
    linear = [m for m in modules.values() if isinstance(m, nn.Linear)]
    if not linear:
        raise InputError("The model has no linear layer, so there is no penultimate feature vector to probe.")
    return linear[-1]


@torch.no_grad()
def run_with_hooks(model: nn.Module, data: Subset, hooks: list[torch.utils.hooks.RemovableHandle],
                   device: torch.device | str = "cpu", batch_size: int = 256) -> None:
    """Run ``model`` over ``data`` in eval mode for the forward ``hooks`` to read, then remove them and restore the
    model's mode (whatever happens)."""
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(data), batch_size):
            model(to_float(data.x[start:start + batch_size], device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)


def penultimate_features(model: nn.Module, data: Subset, device: torch.device | str = "cpu",
                         layer: str = "", batch_size: int = 256) -> torch.Tensor:
    """The input of the model's last linear layer for every image of ``data`` (eval mode, on the CPU)."""
    captured: list[torch.Tensor] = []
    hook = feature_layer(model, layer).register_forward_hook(
        lambda _m, inputs, _o: captured.append(inputs[0].detach().flatten(1).float().cpu()))
    run_with_hooks(model, data, [hook], device, batch_size)
    return torch.cat(captured) if captured else torch.zeros(0, 0)


Probe = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # weight, bias, feature mean, feature std


def fit_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, iterations: int = PROBE_ITERATIONS
              ) -> Probe:
    """A multinomial logistic regression on standardised features: (weight, bias, mean, std), fitted with at most
    ``iterations`` L-BFGS iterations."""
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, labels) + PROBE_L2 * (weight ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach(), mean, std


def probe_predict(probe: Probe, features: torch.Tensor) -> torch.Tensor:
    """The probe's predicted class for each feature row."""
    weight, bias, mean, std = probe
    return (((features.double() - mean) / std) @ weight.T + bias).argmax(1)


def probe_accuracy(model: nn.Module, train: Subset, held_out: Subset, num_classes: int,
                   device: torch.device | str = "cpu", layer: str = "") -> float | None:
    """Accuracy on ``held_out`` of a linear probe fitted on ``train``'s features of ``model``."""
    if len(held_out) == 0 or len(train) == 0:
        return None
    probe = fit_probe(penultimate_features(model, train, device, layer), train.y, num_classes)
    predicted = probe_predict(probe, penultimate_features(model, held_out, device, layer))
    return float((predicted == held_out.y).double().mean())
