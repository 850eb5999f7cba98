"""Real data: Fashion-MNIST as Debian's dataset-fashion-mnist installs it (.ci/run installs it), with the
shipped smallcnn and its shipped I_D. The default unlearning (automatic alpha: adaptive SSD and the guard)
forgets real classes or says, in one sentence shared by the CLI and the page, that it cannot."""

from __future__ import annotations

import json

import pytest
import torch
from apptest_helpers import assert_clean, both_cores, new_app, shown_text

from ssd_core.cli import main
from ssd_core.data import ForgetRequest, make_split
from ssd_core.importance import ImportanceCache
from ssd_core.methods import run_method
from ssd_core.train import accuracy, load_or_train

MAX_FORGET = 0.05
MAX_RETAIN_DROP = 0.03


@pytest.fixture(scope="module")
def shipped(fashion_mnist):
    return load_or_train(fashion_mnist, "smallcnn", device="cpu")


def test_the_shipped_smallcnn_and_its_importance_need_no_training(fashion_mnist, shipped):
    assert shipped.source == "shipped" and shipped.test_acc >= 0.92
    cache = ImportanceCache(None)  # no disk cache: only the package's shipped file can answer
    full = cache.full_importance(shipped.model, fashion_mnist.train(), f"{fashion_mnist.fingerprint()}-train")
    assert cache.misses == 0 and cache.hits == 1
    assert sum(t.numel() for t in full.values()) == sum(p.numel() for p in shipped.model.parameters())
    assert all(bool((t >= 0).all()) for t in full.values())


def test_every_class_ships_its_forget_importance_equal_to_a_fresh_pass(fashion_mnist, shipped):
    """A first class request on Fashion-MNIST's default model reads I_f from the package instead of a 6,000-image
    pass: the file holds what the pass computes (one class recomputed here; to float rounding, the build ran
    on two threads and the suite runs on one)."""
    from ssd_core.importance import compute_importance
    from ssd_core.methods.ssd import ssd_importances

    split = make_split(fashion_mnist, ForgetRequest("class", 7))
    cache = ImportanceCache(None)  # no disk cache: only the package's shipped files can answer
    found = ssd_importances(shipped.model, split, "fisher", 64, device="cpu", cache=cache)
    assert cache.misses == 0 and cache.hits == 2  # I_D and I_f
    with both_cores():
        computed = compute_importance(shipped.model, split.forget_train, "fisher", 64, "cpu")
    for name, tensor in computed.items():
        assert torch.allclose(found.forget[name], tensor, rtol=1e-5, atol=1e-12 * float(tensor.abs().max())), name


def _default_unlearning(dataset, model, request):
    split = make_split(dataset, request)
    before = accuracy(model, split.retain_test)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with both_cores():
        result = run_method("assd", model, split, device="cpu")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # the original is untouched
    return split, result, before


@pytest.mark.parametrize("forget_class", [0, 2, 3])
def test_the_default_forgets_real_classes_and_keeps_the_rest(fashion_mnist, shipped, forget_class):
    """T-shirt (0): the adaptive alpha leaves 8% recognised and no alpha on the bisection's line forgets and
    keeps; the guard's alpha x lambda search finds one. Pullover (2): the adaptive alpha passes a 512-image
    check but costs 3.6 test points; the 2,048-image retain sample catches it. Dress (3): adaptive alone."""
    split, result, before = _default_unlearning(fashion_mnist, shipped.model, ForgetRequest("class", forget_class))
    assert accuracy(result.model, split.forget_test) <= MAX_FORGET
    assert before - accuracy(result.model, split.retain_test) <= MAX_RETAIN_DROP
    assert result.diagnostics["guard"]["applied"] == (forget_class in (0, 2))


def test_trouser_cannot_be_forgotten_and_cli_and_page_say_so_alike(fashion_mnist, capsys, tmp_path):
    """Trouser (1) is not forgotten by any SSD setting that keeps the retained classes: the guard keeps the
    rest, and the CLI (found without --data-dir, the shipped model and I_D) and the Unlearn page (the sidebar
    offers Fashion-MNIST with its class names) show the same sentence with its numbers."""
    with both_cores():
        assert main(["unlearn", "--dataset", "fashion_mnist", "--forget-class", "Trouser", "--quiet",
                     "--json", str(tmp_path / "out.json")]) == 0
    # The CLI prints the page's sentence after its "collapse guard" prefix.
    printed = [line[line.index("Cannot forget"):] for line in capsys.readouterr().out.splitlines()
               if line.startswith("collapse guard") and "Cannot forget" in line]
    assert len(printed) == 1 and "still recognises" in printed[0] and "(α = " in printed[0]
    cli = json.loads((tmp_path / "out.json").read_text())
    assert cli["model_source"] == "shipped" and cli["diagnostics"]["full_importance_cached"]
    assert cli["before"]["retain_test_acc"] - cli["after"]["retain_test_acc"] <= MAX_RETAIN_DROP  # the rest is kept
    assert cli["after"]["forget_test_acc"] > MAX_FORGET  # and the class is not forgotten, as the sentence says
    fix = cli["diagnostics"]["guard"]["fix"]
    assert fix["kept"] and not fix["forgotten"] and f"{100 * fix['check']['forget_after']:.1f}%" in printed[0]

    with both_cores():
        at = new_app({"dataset": "fashion_mnist", "forget": "class:1"}).run()
    assert_clean(at)
    warnings = [shown_text(w.value) for w in at.warning]
    assert printed[0] in warnings, warnings
    # 70,000 images: the cards read the live sample (#25); "All images" gives the CLI's numbers on every image
    assert any(c.value.startswith("The cards read a fixed, class-stratified sample") for c in at.caption)
    with both_cores():
        at.button(key="live_full").click().run()
    note = next(c.value for c in at.caption if c.value.startswith("The cards read a fixed"))
    assert f"retain test {100 * cli['after']['retain_test_acc']:.1f}%" in note
    assert f"forget test {100 * cli['after']['forget_test_acc']:.1f}%" in note
    assert "Fashion-MNIST — 28×28 clothes" in at.selectbox(key="setup_dataset").options
    assert at.selectbox(key="setup_model").value == "smallcnn"
    assert any("T-shirt/top" in option for option in at.selectbox(key="setup_forget_class").options)
    assert any("shipped checkpoint, test accuracy 92.7%" in c.value for c in at.caption)


def test_the_shipped_shadows_follow_the_large_data_plan_and_the_audit_says_so(fashion_mnist):
    """8 LiRA shadows, 4 epochs each, ship for Fashion-MNIST/smallcnn: an audit trains none and notes
    that its shadows were trained shorter than the original."""
    from ssd_core.audit import find_shadows, shadow_plan
    from ssd_core.audit.lira import LARGE_SHADOW_EPOCHS, LARGE_SHADOWS

    plan = shadow_plan(fashion_mnist, "smallcnn")
    assert plan.count == LARGE_SHADOWS == 8 and plan.config["epochs"] == LARGE_SHADOW_EPOCHS < 15
    assert "4 epochs" in plan.note and "weaker" in plan.note
    shadows = find_shadows(fashion_mnist, "smallcnn")
    assert shadows is not None and shadows.source == "shipped" and shadows.count == 8
    assert shadows.in_mask.shape == (8, 60_000) and bool((shadows.in_mask.sum(0) == 4).all())
    assert shadows.test_phi.shape == (8, 10_000) and bool(torch.isfinite(shadows.train_phi).all())


def test_the_lessons_trade_off_task_can_be_done_on_fashion_mnist(fashion_mnist):
    """Lesson step 6 asks for the smallest α keeping retain accuracy (test) at or above a bar. The original keeps
    93% of the rest here, so a 95% bar could never be reached; the bar is 2 points below the original, and the
    sweep the step draws (on the cards' images) shows where it is met: that α completes the task."""
    from ui import landscape, resources
    from ui.state import RunSetup
    from unlearning_lab.lesson import RETAIN_TASK_MARGIN, RETAIN_TASK_MIN

    prepared = resources.prepare(RunSetup(dataset="fashion_mnist", model="smallcnn", request=ForgetRequest("class", 0)))
    bar = prepared.before.retain_test_acc - RETAIN_TASK_MARGIN
    assert bar < RETAIN_TASK_MIN - RETAIN_TASK_MARGIN
    rows = landscape.alpha_sweep(prepared, 1.0)
    answer = next(i for i, r in enumerate(rows) if r["retain_acc"] >= bar)
    assert answer > 0  # the smallest α on the slider does not keep the rest: the task is a real search
    at = new_app({"dataset": "fashion_mnist", "forget": "class:0", "page": "lesson"}).run()
    at.segmented_control(key="lesson_step").set_value("tradeoffs").run()
    at.select_slider(key="alpha").set_value(rows[answer - 1]["alpha"]).run()
    assert_clean(at)
    assert not at.success and any(f"below {100 * bar:.1f}%: raise α" in i.value for i in at.info), [i.value for i in at.info]
    at.select_slider(key="alpha").set_value(rows[answer]["alpha"]).run()
    (done,) = [s.value for s in at.success]
    assert done.startswith(f"Done: α = {rows[answer]['alpha']:g} is the smallest slider value keeping retain accuracy at or "
                           f"above {100 * bar:.1f}%"), done
