"""unlearning_lab.saliency: maps of the right shape, deterministic, and the model left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ssd_core.dampening import dampen
from ssd_core.errors import InputError
from ssd_core.models import Classifier
from unlearning_lab import saliency


@pytest.fixture(scope="module")
def examples(digits_run):
    return saliency.select_examples(digits_run.split, n_forget=2, n_retain=2, seed=0)


def test_examples_come_from_both_sides(digits_run, examples):
    assert examples.groups == ("forget", "forget", "retain", "retain")
    assert all(int(y) == 0 for y in examples.labels[:2]) and all(int(y) != 0 for y in examples.labels[2:])
    assert examples.images.dtype == torch.uint8 and examples.images.shape[1:] == (1, 8, 8)
    again = saliency.select_examples(digits_run.split, n_forget=2, n_retain=2, seed=0)
    assert again.indices == examples.indices


@pytest.mark.parametrize("method", saliency.SALIENCY_METHODS)
def test_every_method_gives_non_negative_maps_and_leaves_the_model_alone(digits_run, examples, method):
    model = digits_run.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks_before = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())
    model.train()  # attribute() must evaluate in eval mode and restore the mode afterwards
    with torch.no_grad():  # and work even when the caller disabled gradients
        maps = saliency.attribute(model, examples.images, examples.labels, method, seed=0)
    assert model.training
    model.eval()
    assert maps.shape == (4, 8, 8) and np.isfinite(maps).all() and (maps >= 0).all()
    assert maps.reshape(4, -1).max(axis=1).min() > 0  # every image gets some attribution
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()) == hooks_before


def test_smoothgrad_is_seeded(digits_run, examples):
    a = saliency.attribute(digits_run.model, examples.images, examples.labels, "smoothgrad", seed=3)
    b = saliency.attribute(digits_run.model, examples.images, examples.labels, "smoothgrad", seed=3)
    c = saliency.attribute(digits_run.model, examples.images, examples.labels, "smoothgrad", seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_saliency_equals_the_plain_input_gradient(digits_run, examples):
    model = digits_run.model.eval()
    x = examples.images.float().div(255).requires_grad_(True)
    logits = model(x)
    grads = torch.autograd.grad(logits[torch.arange(len(x)), examples.labels].sum(), x)[0]
    expected = grads.abs().sum(dim=1).numpy()
    np.testing.assert_allclose(saliency.attribute(model, examples.images, examples.labels, "saliency"), expected, rtol=1e-5)


def test_compare_after_unlearning_weakens_the_forget_class(digits_run, examples):
    after, _ = dampen(digits_run.model, digits_run.importances.full, digits_run.importances.forget, 10.0, 1.0)
    comparison = saliency.compare(digits_run.model, after, examples, "gradcam", "true")
    assert comparison.before_maps.shape == comparison.after_maps.shape == (4, 8, 8)
    assert comparison.before_targets == examples.labels.tolist() == comparison.after_targets
    assert all(p == 0 for p in comparison.before_pred[:2])
    assert any(p != 0 for p in comparison.after_pred[:2])  # the forget class is no longer predicted
    labels = comparison.row_labels(digits_run.dataset.classes)
    assert labels[0].startswith("forget: 0") and "→" in labels[0]
    predicted = saliency.compare(digits_run.model, after, examples, "saliency", "predicted")
    assert predicted.after_targets == predicted.after_pred


def test_gradcam_needs_a_conv_layer():
    mlp = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), (0.5,), (0.25,))
    assert "gradcam" not in saliency.available_methods(mlp)
    with pytest.raises(InputError):
        saliency.attribute(mlp, torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [0, 1], "gradcam")
    with pytest.raises(InputError):
        saliency.attribute(mlp, torch.zeros(2, 1, 8, 8, dtype=torch.uint8), [0, 1], "nonsense")
