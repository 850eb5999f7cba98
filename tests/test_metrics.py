"""Metrics: MIA, ZRF, confusion, gap to retrain."""

import math

import numpy as np
import torch

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.metrics import (
    Evaluation,
    entropy,
    evaluate,
    gap_to_retrain,
    is_channels_last,
    is_over_forgetting,
    js_divergence,
    logistic_regression_1d,
    logits_of,
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


def test_mia_regression_is_the_scikit_learn_optimum():
    """The exact two-parameter Newton solve finds the optimum of scikit-learn's balanced, L2 objective."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    for n_members, n_outside, shape in ((1295, 360, 1.0), (200, 900, 2.0), (60, 60, 0.5)):
        x = np.concatenate([rng.gamma(shape, 0.3, n_members), rng.gamma(2.0, 0.5, n_outside)])
        y = np.concatenate([np.ones(n_members), np.zeros(n_outside)])
        reference = LogisticRegression(class_weight="balanced", tol=1e-12, max_iter=10_000).fit(x.reshape(-1, 1), y)
        a, b = logistic_regression_1d(x, y)
        assert math.isclose(a, float(reference.coef_[0, 0]), rel_tol=1e-5)
        assert math.isclose(b, float(reference.intercept_[0]), rel_tol=1e-5)
        forget = rng.gamma(1.5, 0.4, 300)
        members = np.mean(reference.predict(forget.reshape(-1, 1)))
        mia = mia_from_entropies(torch.tensor(x[:n_members]), torch.tensor(x[n_members:]), torch.tensor(forget))
        assert abs(mia - members) <= 1 / 300  # at most one sample on the boundary may differ


def test_fast_evaluation_leaves_the_model_alone_and_agrees():
    dataset = load_dataset("digits")
    model = build_for_dataset("smallcnn", dataset, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    test = dataset.test()
    fast = logits_of(model, test, "cpu")  # a private channels_last copy on the CPU
    assert not is_channels_last(model) or not any(p.dim() == 4 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    plain = torch.cat([model(test.x[i : i + 100].float() / 255.0) for i in range(0, len(test), 100)]).detach()
    assert fast.shape == plain.shape and torch.allclose(fast, plain, atol=1e-4)
    assert torch.equal(fast.argmax(1), plain.argmax(1))


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


# ---------------------------------------------------------------------------------------------
# #25.1 a budget per move: fixed, stratified, seeded samples per card, the CLI's --eval-sample


def test_a_stratified_sample_keeps_each_class_share_and_is_fixed():
    from ssd_core.metrics import Evaluator

    dataset = load_dataset("shapes")
    split = make_split(dataset, ForgetRequest("class", target=2))
    sampled = Evaluator(split, max_per_subset=250, seed=4, stratified=True)
    assert sampled.sizes() == {name: min(250, len(getattr(split, name)))
                               for name in ("forget_train", "retain_train", "forget_test", "retain_test")}
    index = sampled.index["retain_train"]
    assert set(index.tolist()) <= set(split.retain_train.indices.tolist())  # only retain images, no repeats
    assert len(set(index.tolist())) == 250
    whole = torch.bincount(dataset.train_y[split.retain_train.indices], minlength=dataset.num_classes).double()
    picked = torch.bincount(dataset.train_y[index], minlength=dataset.num_classes).double()
    assert bool(((picked - 250 * whole / whole.sum()).abs() < 1.0).all())  # each class its share, to one image
    again = Evaluator(split, max_per_subset=250, seed=4, stratified=True).index["retain_train"]
    assert torch.equal(index, again)  # the same sample every move
    other = Evaluator(split, max_per_subset=250, seed=5, stratified=True).index["retain_train"]
    assert not torch.equal(index, other)


def test_a_sampled_card_is_the_exact_accuracy_on_its_images_with_a_wilson_interval():
    from ssd_core.data.dataset import to_float
    from ssd_core.metrics import Evaluator, accuracy_interval

    dataset = load_dataset("digits")
    split = make_split(dataset, ForgetRequest("class", target=3))
    model = build_for_dataset("smallcnn", dataset, seed=0)
    sampled = Evaluator(split, max_per_subset=100, seed=0, stratified=True)
    result = sampled(model)
    for name in ("retain_train", "retain_test"):
        index = sampled.index[name]
        x, y = (dataset.train_x, dataset.train_y) if name.endswith("train") else (dataset.test_x, dataset.test_y)
        with torch.no_grad():
            by_hand = float((model(to_float(x[index], "cpu")).argmax(1) == y[index]).double().mean())
        assert getattr(result, f"{name}_acc") == by_hand
    assert result.test_acc is None  # a union of two samples is not the test set: no number that means something else
    assert result.zrf is None
    assert evaluate(model, split).test_acc is not None
    # Wilson's interval by its formula: p = 0.9 on 100 images
    p, n, z = 0.9, 100, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert accuracy_interval(p, n) == (centre - half, centre + half)
    assert accuracy_interval(1.0, 50)[1] == 1.0 and accuracy_interval(0.0, 50)[0] == 0.0
    assert accuracy_interval(None, 10) is None and accuracy_interval(0.5, 0) is None
