"""The alpha/lambda landscape: sweep numbers equal single runs; the frontier is non-dominated."""

import pytest

from ssd_core.dampening import dampen
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.errors import InputError
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import evaluate
from ssd_core.sweep import closest_to_retrain, log_grid, suggest_alpha, sweep
from ssd_core.train import load_or_train


@pytest.fixture(scope="module")
def setting():
    ds = load_dataset("digits")
    model = load_or_train(ds, "smallcnn", seed=0, device="cpu").model
    split = make_split(ds, ForgetRequest("class", 0))
    return model, split, ssd_importances(model, split)


def test_sweep_equals_single_runs(setting):
    model, split, imp = setting
    alphas, lams = [1.0, 10.0, 100.0], [0.1, 1.0]
    result = sweep(model, imp.full, imp.forget, split, alphas, lams)
    assert result.complete and len(result.points) == 6
    for point in result.points:
        single, rep = dampen(model, imp.full, imp.forget, point.alpha, point.lam)
        ev = evaluate(single, split)
        for key in ("forget_test_acc", "retain_test_acc", "forget_train_acc", "retain_train_acc", "mia"):
            assert getattr(point, key) == getattr(ev, key), (point.alpha, point.lam, key)
        assert point.selected == rep.total_selected
    grid = result.grid("forget_test_acc")
    assert len(grid) == 2 and len(grid[0]) == 3


def test_pareto_points_are_non_dominated(setting):
    model, split, imp = setting
    result = sweep(model, imp.full, imp.forget, split, log_grid(0.3, 300, 6), [0.1, 1.0, 3.0])
    front = result.pareto_points()
    assert front
    for p in front:
        for q in result.points:
            better_both = q.retain_test_acc >= p.retain_test_acc and q.forget_test_acc <= p.forget_test_acc
            strictly = q.retain_test_acc > p.retain_test_acc or q.forget_test_acc < p.forget_test_acc
            assert not (better_both and strictly), (p, q)
    for q in result.points:
        if not q.pareto:  # every other point is dominated by someone
            assert any(
                r.retain_test_acc >= q.retain_test_acc and r.forget_test_acc <= q.forget_test_acc
                and (r.retain_test_acc > q.retain_test_acc or r.forget_test_acc < q.forget_test_acc)
                for r in result.points
            )


def test_suggest_alpha_finds_the_gentlest_setting(setting):
    model, split, imp = setting
    best = suggest_alpha(model, imp.full, imp.forget, split, target_forget_acc=0.05)
    assert best is not None and best.forget_test_acc <= 0.05
    gentler, _ = dampen(model, imp.full, imp.forget, best.alpha * 1.5, 1.0)
    assert evaluate(gentler, split, with_mia=False).forget_test_acc > 0.05 or best.alpha >= 1000


def test_closest_to_retrain_and_bounds(setting):
    model, split, imp = setting
    result = sweep(model, imp.full, imp.forget, split, [1.0, 10.0, 100.0], [1.0])
    target = {"forget_test_acc": 0.0, "retain_test_acc": 1.0, "forget_train_acc": 0.0, "retain_train_acc": 1.0, "mia": 0.0}
    best = closest_to_retrain(result, target)
    assert best in result.points
    stopped = sweep(model, imp.full, imp.forget, split, [1.0, 10.0], [1.0, 2.0], should_stop=lambda: True)
    assert not stopped.complete and stopped.points == []
    with pytest.raises(InputError):
        sweep(model, imp.full, imp.forget, split, [0.0], [1.0])
