"""Metrics: MIA, ZRF, confusion, gap to retrain."""

import math

import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.metrics import (
    Evaluation,
    entropy,
    evaluate,
    gap_to_retrain,
    is_over_forgetting,
    js_divergence,
    mia_from_entropies,
    zrf_score,
)
from ssd_core.models import build_for_dataset


def test_mia_separates_members():
    gen = torch.Generator().manual_seed(0)
    retain = torch.rand(500, generator=gen) * 0.1  # members: confident, low entropy
    test = 1.0 + torch.rand(300, generator=gen)  # non-members: high entropy
    assert mia_from_entropies(retain, test, torch.full((50,), 0.05)) == 1.0
    assert mia_from_entropies(retain, test, torch.full((50,), 1.5)) == 0.0
    assert mia_from_entropies(retain, test, torch.empty(0)) is None


def test_js_and_zrf_formula():
    a = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    assert torch.allclose(js_divergence(a, a), torch.zeros(2), atol=1e-7)
    assert zrf_score(a, a) == 1.0
    far = js_divergence(torch.tensor([[50.0, -50.0]]), torch.tensor([[-50.0, 50.0]]))
    assert math.isclose(float(far), math.log(2), rel_tol=1e-5)  # JS bounded by ln 2 (nats)
    p = torch.softmax(torch.tensor([[1.0, 2.0, 0.5]]), 1)
    q = torch.softmax(torch.tensor([[0.0, 0.3, 2.0]]), 1)
    m = (p + q) / 2
    manual = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    assert math.isclose(float(js_divergence(p.log(), q.log())), float(manual), rel_tol=1e-5)


def test_entropy_uniform():
    assert math.isclose(float(entropy(torch.zeros(1, 4))), math.log(4), rel_tol=1e-6)


def test_evaluate_consistency():
    ds = load_dataset("digits")
    split = make_split(ds, ForgetRequest("class", 2))
    model = build_for_dataset("smallcnn", ds, seed=0)
    ev = evaluate(model, split)
    assert sum(map(sum, ev.confusion)) == len(ds.test_y)
    diag = sum(ev.confusion[i][i] for i in range(10))
    assert math.isclose(ev.test_acc, diag / len(ds.test_y))
    assert math.isclose(ev.forget_test_acc, ev.per_class_acc[2])
    assert 0.0 <= ev.mia <= 1.0 and ev.zrf is None
    d = ev.to_dict()
    assert set(d) >= {"retain_test_acc", "forget_test_acc", "retain_train_acc", "forget_train_acc", "test_acc", "mia", "per_class_acc"}


def test_gap_and_over_forgetting():
    def ev(forget):
        return Evaluation(0.9, forget, 1.0, forget, 0.85, 0.2, [], [])

    gaps = gap_to_retrain(ev(0.1), ev(0.3))
    assert math.isclose(gaps["forget_test_acc"], 0.2) and gaps["retain_test_acc"] == 0.0 and gaps["zrf"] is None
    assert is_over_forgetting(ev(0.0), ev(0.3)) and not is_over_forgetting(ev(0.25), ev(0.3))
