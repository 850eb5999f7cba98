"""SSD and LFSSD forget a class on digits/smallcnn and leave the original model untouched."""

import pytest
import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods import available_methods, run_method
from ssd_core.metrics import evaluate
from ssd_core.train import load_or_train

# Classes where the paper defaults fit digits/smallcnn; 3, 8 and 9 need alpha ~30 (see README).
SSD_CLASSES = (0, 1, 2, 5, 6, 7)
# LFSSD at alpha 5 meets its targets on these; 2, 3 and 4 lose 6-19 retain points there.
LFSSD_CLASSES = (0, 1, 5, 6, 7)


@pytest.fixture(scope="module")
def original():
    return load_or_train(load_dataset("digits"), "smallcnn", seed=0, device="cpu").model


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("cls", SSD_CLASSES)
def test_ssd_paper_defaults_forget_one_class(original, cls):
    split = make_split(load_dataset("digits"), ForgetRequest("class", cls))
    before_weights = snapshot(original)
    before = evaluate(original, split)
    result = run_method("ssd", original, split, alpha=10, lam=1)
    after = evaluate(result.model, split)
    assert after.forget_test_acc <= 0.05
    assert after.retain_test_acc >= before.retain_test_acc - 0.03
    assert after.mia < before.mia
    report = result.diagnostics["report"]
    assert 0 < report.total_selected < report.total_params
    assert_unchanged(original, before_weights)


@pytest.mark.parametrize("cls", LFSSD_CLASSES)
def test_lfssd_forgets_without_labels(original, cls):
    split = make_split(load_dataset("digits"), ForgetRequest("class", cls))
    before_weights = snapshot(original)
    before = evaluate(original, split, with_mia=False)
    result = run_method("lfssd", original, split, alpha=5, lam=1)
    after = evaluate(result.model, split, with_mia=False)
    assert after.forget_test_acc <= 0.10
    assert after.retain_test_acc >= before.retain_test_acc - 0.06
    assert_unchanged(original, before_weights)


def test_alpha_controls_how_much_is_dampened(original):
    split = make_split(load_dataset("digits"), ForgetRequest("class", 3))
    counts = [run_method("ssd", original, split, alpha=a, lam=1).diagnostics["report"].total_selected for a in (3, 10, 30, 100)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


def test_lambda_zero_zeroes_selected_and_large_lambda_changes_nothing(original):
    split = make_split(load_dataset("digits"), ForgetRequest("class", 3))
    zero = run_method("ssd", original, split, alpha=10, lam=0).diagnostics["report"]
    assert zero.total_selected > 0
    assert all(layer.mean_factor == 0.0 for layer in zero.layers if layer.selected)
    big = run_method("ssd", original, split, alpha=10, lam=1e6)
    for (name, p0), p1 in zip(original.named_parameters(), big.model.parameters()):
        assert torch.equal(p0, p1), name  # beta = min(huge, 1) = 1


def test_registry_lists_ssd_and_lfssd():
    methods = available_methods()
    assert {"ssd", "lfssd"} <= set(methods)
    assert methods["lfssd"].default_config().estimator == "lossfree"
