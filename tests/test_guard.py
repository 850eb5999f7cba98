"""SSD at its defaults: adaptive alpha (ASSD/ALFSSD), the collapse guard, and the rest of the SSD
family (JiT, UNSIR), on the shipped checkpoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ssd_core.cli import main
from ssd_core.dampening import adaptive_alpha, adaptive_percentile
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.guard import CollapseGuard
from ssd_core.methods import FORGET_ONLY, get_method, run_method
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import evaluate, logits_of
from ssd_core.train import load_or_train

MAX_FORGET = 0.05  # forget-test accuracy after unlearning, at most
MAX_RETAIN_DROP = 0.03  # retain-test accuracy lost, at most



@pytest.fixture(scope="module", autouse=True)
def _both_cores():
    """Library computation only (no server, no browser): use both cores of the CI machine."""
    from apptest_helpers import both_cores

    with both_cores():
        yield


@pytest.fixture(scope="module")
def digits():
    dataset = load_dataset("digits")
    return dataset, load_or_train(dataset, "smallcnn", device="cpu").model


@pytest.fixture(scope="module")
def shapes():
    dataset = load_dataset("shapes")
    return dataset, load_or_train(dataset, "resnet18_narrow", device="cpu").model


def _numpy_alpha(full: dict, forget: dict, n_forget: int, n_total: int) -> float:
    """The adaptive alpha computed independently: numpy over the concatenated finite ratios."""
    ratios = []
    for name, d in full.items():
        d = d.double().numpy().ravel()
        f = forget[name].double().numpy().ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            r = f / d
        ratios.append(r[(d > 0) & np.isfinite(r)])
    return float(np.percentile(np.concatenate(ratios), 100 - math.log(1 + 100 * n_forget / n_total)))


@pytest.mark.parametrize("request_", [ForgetRequest("class", 3), ForgetRequest("random", k=100, seed=0)],
                         ids=["class3", "random100"])
def test_adaptive_alpha_is_the_numpy_percentile(digits, request_):
    dataset, model = digits
    split = make_split(dataset, request_)
    imp = ssd_importances(model, split)
    chosen = adaptive_alpha(imp.full, imp.forget, len(split.forget_train), len(split.train))
    expected = _numpy_alpha(imp.full, imp.forget, len(split.forget_train), len(split.train))
    assert abs(chosen.alpha - expected) <= 1e-6 * expected
    assert chosen.percentile == pytest.approx(100 - math.log(1 + 100 * len(split.forget_train) / len(split.train)))
    assert adaptive_percentile(1, 10) == pytest.approx(100 - math.log(11))


def _test_accuracies(model, dataset, cls: int) -> tuple[float, float]:
    """(forget-test, retain-test) accuracy for forgetting class ``cls`` (one pass over the test set)."""
    test = dataset.test()
    correct = logits_of(model, test, "cpu").argmax(1) == test.y
    forget = test.y == cls
    return float(correct[forget].float().mean()), float(correct[~forget].float().mean())


def _check_every_class(dataset, model, method: str = "assd") -> list[tuple[int, float, float, float]]:
    rows = []
    for cls in range(dataset.num_classes):
        split = make_split(dataset, ForgetRequest("class", cls))
        _, retain_before = _test_accuracies(model, dataset, cls)
        result = run_method(method, model, split)
        forget_after, retain_after = _test_accuracies(result.model, dataset, cls)
        rows.append((cls, forget_after, retain_before - retain_after, result.diagnostics["alpha"]))
    return rows


def test_auto_forgets_every_digits_class_and_keeps_the_rest(digits):
    rows = _check_every_class(*digits)
    failing = [r for r in rows if r[1] > MAX_FORGET or r[2] > MAX_RETAIN_DROP]
    assert not failing, failing


def test_auto_forgets_every_shapes_class_and_keeps_the_rest(shapes):
    rows = _check_every_class(*shapes)
    failing = [r for r in rows if r[1] > MAX_FORGET or r[2] > MAX_RETAIN_DROP]
    assert not failing, failing


def test_the_guard_fires_at_alpha_10_on_class_3_and_its_fix_keeps_the_rest(digits):
    dataset, model = digits
    split = make_split(dataset, ForgetRequest("class", 3))
    before = evaluate(model, split, with_mia=False)
    warned = run_method("ssd", model, split, alpha=10.0)  # the default guard only warns
    guard = warned.diagnostics["guard"]
    assert guard["check"]["fired"] and guard["check"]["drop"] > 0.5 and not guard["applied"]
    collapsed = evaluate(warned.model, split, with_mia=False)
    assert before.retain_test_acc - collapsed.retain_test_acc > 0.5  # the collapse is real
    fix = guard["fix"]
    assert fix["kept"] and fix["forgotten"] and fix["alpha"] > 10
    fixed = run_method("ssd", model, split, alpha=10.0, guard="fix")
    assert fixed.diagnostics["guard"]["applied"] and fixed.diagnostics["alpha"] == fix["alpha"]
    after = evaluate(fixed.model, split, with_mia=False)
    assert after.forget_test_acc <= MAX_FORGET
    assert before.retain_test_acc - after.retain_test_acc <= MAX_RETAIN_DROP
    assert fixed.seconds["guard"] < 2.0  # bench/run.py measures it (target 0.5 s on digits)


def test_the_guard_reads_training_data_only(digits):
    """Its samples are drawn from retain-train and the forget set, never from test images."""
    dataset, model = digits
    split = make_split(dataset, ForgetRequest("class", 3))
    guard = CollapseGuard(model, split.retain_train, split.forget_train, "cpu")
    retain_ids = set(split.retain_train.indices.tolist())
    assert set(guard.retain.indices.tolist()) <= retain_ids and len(guard.retain) == 512
    assert set(guard.forget.indices.tolist()) <= set(split.forget_train.indices.tolist())
    check = guard.check(model, 1.0, 1.0)  # the original against itself
    assert check.drop == 0 and not check.fired
    # the check from a full-split forward pass equals the check from its own forward pass
    imp = ssd_importances(model, split)
    from ssd_core.dampening import dampen
    from ssd_core.metrics import logits_of

    damped, _ = dampen(model, imp.full, imp.forget, 10.0, 1.0)
    direct = guard.check(damped, 10.0, 1.0)
    from_logits = guard.check_logits(logits_of(damped, split.train, "cpu"), 10.0, 1.0)
    assert direct.retain_after == from_logits.retain_after and direct.forget_after == from_logits.forget_after


def test_cli_alpha_auto_is_the_default_and_the_guard_speaks(capsys):
    base = ["unlearn", "--dataset", "digits", "--forget-class", "3", "--quiet"]
    assert main([*base, "--json", "-"]) == 0
    auto = json.loads(capsys.readouterr().out)
    assert auto["method"] == "assd" and "adaptive" in auto["diagnostics"]
    assert auto["after"]["forget_test_acc"] <= MAX_FORGET
    assert auto["before"]["retain_test_acc"] - auto["after"]["retain_test_acc"] <= MAX_RETAIN_DROP
    assert main([*base, "--alpha", "auto", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"]["alpha"] == auto["diagnostics"]["alpha"]

    assert main([*base, "--alpha", "10"]) == 0
    out = capsys.readouterr().out
    assert "WARNING Collapse: at α = 10 retain accuracy" in out and "Rerun with --guard to use it." in out
    assert main([*base, "--alpha", "10", "--guard"]) == 0
    out = capsys.readouterr().out
    assert "collapse guard, applied: α = " in out

    assert main([*base, "--method", "assd", "--alpha", "10"]) == 2
    assert "assd chooses alpha itself; use --method ssd --alpha 10" in capsys.readouterr().err
    assert main([*base, "--method", "finetune", "--alpha", "auto"]) == 2
    assert "--alpha auto is for the SSD family" in capsys.readouterr().err
    assert main([*base, "--method", "finetune", "--guard"]) == 2
    assert "--guard is for the SSD family" in capsys.readouterr().err


def test_alfssd_forgets_every_digits_class_and_keeps_the_rest(digits):
    """The adaptive percentile alone leaves LFSSD's classes 3 and 4 recognised (62% and 31%): the
    guard lowers alpha for whole classes that are still recognised on the forget set."""
    rows = _check_every_class(*digits, method="alfssd")
    failing = [r for r in rows if r[1] > MAX_FORGET or r[2] > MAX_RETAIN_DROP]
    assert not failing, failing


# ---------------------------------------------------------------------------------------------
# JiT and UNSIR


def test_jit_reads_only_the_forget_set_and_forgets_class_1(digits):
    """JiT's spec reads the forget set only (the runner enforces it). On the digits it forgets
    every class by at least 50 points, but keeps retain-test within 10 points only on some
    (0, 1, 3, 8 with the defaults): class 1 is one of those; the README shows every class."""
    dataset, model = digits
    assert get_method("jit").data_touched == FORGET_ONLY
    split = make_split(dataset, ForgetRequest("class", 1))
    before = evaluate(model, split, with_mia=False)
    result = run_method("jit", model, split)
    after = evaluate(result.model, split, with_mia=False)
    assert result.data_touched == FORGET_ONLY and result.diagnostics["stopped"] == "forget set forgotten"
    assert before.forget_test_acc - after.forget_test_acc >= 0.5
    assert before.retain_test_acc - after.retain_test_acc <= 0.10


def test_unsir_forgets_every_digits_class_within_10_points(digits):
    dataset, model = digits
    rows = []
    for cls in range(dataset.num_classes):
        split = make_split(dataset, ForgetRequest("class", cls))
        before = evaluate(model, split, with_mia=False)
        after = evaluate(run_method("unsir", model, split).model, split, with_mia=False)
        rows.append((cls, before.forget_test_acc - after.forget_test_acc, before.retain_test_acc - after.retain_test_acc))
    failing = [r for r in rows if r[1] < 0.5 or r[2] > 0.10]
    assert not failing, failing


def test_unsir_refuses_instance_requests(digits):
    from ssd_core.errors import InputError

    dataset, model = digits
    with pytest.raises(InputError):
        run_method("unsir", model, make_split(dataset, ForgetRequest("random", k=10, seed=0)))
    assert torch.is_tensor(next(model.parameters()))
