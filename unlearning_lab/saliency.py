"""Attribution maps (captum) for comparing a model before and after unlearning.

Methods (models take float images in [0, 1]; normalisation is inside the model):

- ``saliency``: |d logit_target / d pixel| (Simonyan et al.).
- ``integrated_gradients``: path integral of gradients from a black image (zeros) to the input.
- ``smoothgrad``: the saliency map averaged over noisy copies of the input (captum NoiseTunnel).
- ``gradcam``: Grad-CAM on the last Conv2d (``models.last_conv_layer``), ReLU'd and upsampled
  bilinearly to the input size; only for models with a conv layer.

Every map is returned as a non-negative magnitude per pixel, shaped (N, H, W): the absolute
attribution summed over colour channels (Grad-CAM is already one channel and non-negative), so a
before and an after map can share one colour scale and be subtracted.

The model is put in eval mode and gradients are always enabled (never under ``torch.no_grad``).
Grad-CAM registers a temporary hook on the model: do not use one model object from two threads
at once (the dashboard passes private copies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ssd_core.data import ForgetSplit, to_float
from ssd_core.errors import InputError
from ssd_core.models import has_conv_layers, last_conv_layer

SALIENCY_METHODS: tuple[str, ...] = ("saliency", "integrated_gradients", "smoothgrad", "gradcam")
METHOD_LABELS = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "smoothgrad": "SmoothGrad",
    "gradcam": "Grad-CAM",
}


def available_methods(model: nn.Module) -> list[str]:
    """The attribution methods that apply to ``model`` (Grad-CAM needs a conv layer)."""
    return [m for m in SALIENCY_METHODS if m != "gradcam" or has_conv_layers(model)]


@dataclass(frozen=True)
class SaliencyExamples:
    """A few test (or train) images to explain, from the forget and the retain side."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    groups: tuple[str, ...]  # "forget" or "retain" per image
    sources: tuple[str, ...]  # "test" or "train" per image
    indices: tuple[int, ...]  # index into that split

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def select_examples(split: ForgetSplit, n_forget: int = 4, n_retain: int = 4, seed: int = 0) -> SaliencyExamples:
    """Seeded picks: forget images from forget-test (forget-train when the request has no test
    images, e.g. random samples) and retain images from retain-test."""
    generator = torch.Generator().manual_seed(seed)

    def pick(subset, k: int):
        if k <= 0 or len(subset) == 0:
            return subset.select(torch.zeros(0, dtype=torch.long))
        order = torch.randperm(len(subset), generator=generator)[: min(k, len(subset))]
        return subset.select(order.sort().values)

    forget_source = "test" if len(split.forget_test) > 0 else "train"
    forget = pick(split.forget_test if forget_source == "test" else split.forget_train, n_forget)
    retain = pick(split.retain_test, n_retain)
    return SaliencyExamples(
        images=torch.cat([forget.x, retain.x]),
        labels=torch.cat([forget.y, retain.y]),
        groups=("forget",) * len(forget) + ("retain",) * len(retain),
        sources=(forget_source,) * len(forget) + ("test",) * len(retain),
        indices=tuple(int(i) for i in torch.cat([forget.indices, retain.indices])),
    )


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    model.eval()
    return model(to_float(images, device)).argmax(1).cpu()


def attribute(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | Sequence[int],
    method: str = "saliency",
    *,
    device: torch.device | str = "cpu",
    ig_steps: int = 32,
    smooth_samples: int = 16,
    smooth_noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """Attribution magnitudes (N, H, W) of ``targets`` for ``images`` (uint8 or float [0, 1])."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Saliency

    if method not in SALIENCY_METHODS:
        raise InputError(f"Unknown attribution method '{method}'; choose one of {', '.join(SALIENCY_METHODS)}.")
    if len(images) == 0:
        return np.zeros((0, *images.shape[2:]), dtype=np.float32)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    x = to_float(images, device).clone().requires_grad_(True)
    target = torch.as_tensor(targets, dtype=torch.long, device=device)
    try:
        with torch.enable_grad():
            if method == "saliency":
                attr = Saliency(model).attribute(x, target=target, abs=True)
            elif method == "integrated_gradients":
                ig = IntegratedGradients(model)
                attr = ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=ig_steps,
                                    internal_batch_size=max(1, 2048 // max(1, len(x))))
            elif method == "smoothgrad":
                with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
                    torch.manual_seed(seed)
                    attr = NoiseTunnel(Saliency(model)).attribute(
                        x, nt_type="smoothgrad", nt_samples=smooth_samples, stdevs=smooth_noise,
                        target=target, abs=True,
                    )
            else:
                layer = last_conv_layer(model)
                if layer is None:
                    raise InputError("Grad-CAM needs a model with a convolutional layer; pick another method.")
                cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
                attr = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
                attr = attr.clamp_min(0.0)
    finally:
        model.train(was_training)
    return attr.detach().abs().sum(dim=1).float().cpu().numpy()


@dataclass
class SaliencyComparison:
    """Maps of the same images under the original and the unlearned model."""

    method: str
    target_mode: str  # "true" or "predicted"
    examples: SaliencyExamples
    before_maps: np.ndarray
    after_maps: np.ndarray
    before_pred: list[int]
    after_pred: list[int]
    before_targets: list[int]
    after_targets: list[int]

    def row_labels(self, classes: Sequence[str]) -> list[str]:
        out = []
        for i in range(len(self.examples)):
            label = classes[int(self.examples.labels[i])]
            out.append(
                f"{self.examples.groups[i]}: {label}<br>predicted {classes[self.before_pred[i]]} → {classes[self.after_pred[i]]}"
            )
        return out


def targets_for(model: nn.Module, examples: SaliencyExamples, target_mode: str, device: torch.device | str) -> tuple[list[int], list[int]]:
    """(predictions, attribution targets) of ``model`` for the examples."""
    pred = predict(model, examples.images, device).tolist()
    if target_mode not in ("true", "predicted"):
        raise InputError("The attribution target must be 'true' (the label) or 'predicted'.")
    targets = examples.labels.tolist() if target_mode == "true" else pred
    return pred, targets


def model_maps(model: nn.Module, examples: SaliencyExamples, method: str, target_mode: str = "true",
               device: torch.device | str = "cpu", **kwargs) -> tuple[np.ndarray, list[int], list[int]]:
    """(maps, predictions, targets) of one model: what a comparison needs from each side."""
    pred, targets = targets_for(model, examples, target_mode, device)
    return attribute(model, examples.images, targets, method, device=device, **kwargs), pred, targets


def compare(
    before_model: nn.Module,
    after_model: nn.Module,
    examples: SaliencyExamples,
    method: str = "saliency",
    target_mode: str = "true",
    device: torch.device | str = "cpu",
    **kwargs,
) -> SaliencyComparison:
    """Attribution maps of the same images before and after unlearning (same method, target rule)."""
    b_maps, b_pred, b_targets = model_maps(before_model, examples, method, target_mode, device, **kwargs)
    a_maps, a_pred, a_targets = model_maps(after_model, examples, method, target_mode, device, **kwargs)
    return SaliencyComparison(method, target_mode, examples, b_maps, a_maps, b_pred, a_pred, b_targets, a_targets)
