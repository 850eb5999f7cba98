"""#25.1 A budget per move: on data of more than 3,000 images the Unlearn page's cards read a fixed,
class-stratified, seeded sample per card (what ``unlearn --eval-sample N`` reads), say so, give each card's
95% interval, and show the all-image numbers on request, never in place of the sample's."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import pytest
from apptest_helpers import assert_clean, both_cores, metric_values, new_app

from ssd_core.cli import main
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.metrics import LIVE_FULL_IMAGES, accuracy_interval, live_sample_size
from ui.state import RunSetup

SHAPES = {"dataset": "shapes", "model": "resnet18_narrow", "forget": "class:3", "method": "ssd", "alpha": "40",
          "lambda": "1.5"}


def cli(*extra: str) -> dict:
    out = io.StringIO()
    with both_cores(), contextlib.redirect_stdout(out):
        assert main(["unlearn", "--dataset", "shapes", "--model", "resnet18_narrow", "--forget-class", "3", "--method",
                     "ssd", "--alpha", "40", "--lam", "1.5", "--json", "-", "--quiet", *extra]) == 0
    return json.loads(out.getvalue())


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def test_which_data_a_move_samples(monkeypatch):
    digits, shapes = (make_split(load_dataset(n), ForgetRequest("class", 3)) for n in ("digits", "shapes"))
    assert len(digits.train) + len(digits.test) <= LIVE_FULL_IMAGES < len(shapes.train) + len(shapes.test)
    assert live_sample_size(digits) is None and live_sample_size(shapes) == 200
    monkeypatch.setenv("UNLEARNING_LAB_LIVE_SAMPLE", "0")  # every image, however large
    assert live_sample_size(shapes) is None
    monkeypatch.setenv("UNLEARNING_LAB_LIVE_SAMPLE", "500")
    assert live_sample_size(shapes) == 500


def test_shapes_cards_read_the_cli_sample_and_all_images_come_on_request(monkeypatch):
    import streamlit as st

    from ui import resources

    sampled, full = cli("--eval-sample", "200"), cli()
    st.cache_resource.clear()  # prepared afresh, with a spy on ZRF's random model
    random_passes = []
    real = resources.random_reference_logits
    monkeypatch.setattr(resources, "random_reference_logits", lambda *a, **k: random_passes.append(a) or real(*a, **k))
    assert sampled["evaluated"] == {"forget_train": 200, "retain_train": 200, "forget_test": 138, "retain_test": 200}
    assert full["evaluated"]["retain_train"] == sampled["forget"]["n_retain_train"]
    at = new_app({**SHAPES, "page": "unlearn"}).run()
    assert_clean(at)
    cards = metric_values(at)
    for label, key in (("Forget (test)", "forget_test_acc"), ("Retain (test)", "retain_test_acc"),
                       ("Retain (train)", "retain_train_acc"), ("MIA", "mia")):
        assert cards[label] == pct(sampled["after"][key]), label
    retain = next(m for m in at.metric if m.label == "Retain (train)")
    n, whole = 200, sampled["forget"]["n_retain_train"]
    lo, hi = accuracy_interval(sampled["after"]["retain_train_acc"], n)
    assert f"On a fixed sample of {n:,} of its {whole:,} images (95% interval {pct(lo)} to {pct(hi)})." in retain.help
    # the delta compares the same images before and after (the original on the sample, as the CLI's "before")
    assert retain.delta in (f"{100 * (sampled['after']['retain_train_acc'] - sampled['before']['retain_train_acc']):+.1f} pp",
                            "±0.0 pp")
    note = next(c.value for c in at.caption if c.value.startswith("The cards read a fixed, class-stratified sample"))
    assert "at most 200 images each (738 of 5,000" in note and "All images at this setting" not in note
    assert random_passes == []  # the sampled cards show no ZRF: the first screen skips its random model's pass
    at.button(key="live_full").click().run()
    assert_clean(at)
    assert len(random_passes) == 1  # all images: ZRF's random model, once, and its ZRF is the CLI's
    prepared = resources.peek_prepared(RunSetup(dataset="shapes", model="resnet18_narrow",
                                                request=ForgetRequest("class", 3)))
    assert prepared is not None and resources.peek_full_live(prepared, 40.0, 1.5).zrf == full["after"]["zrf"]
    note = next(c.value for c in at.caption if c.value.startswith("The cards read a fixed, class-stratified sample"))
    after = full["after"]
    assert (f"All images at this setting: forget test {pct(after['forget_test_acc'])}, forget train "
            f"{pct(after['forget_train_acc'])}, retain test {pct(after['retain_test_acc'])}, retain train "
            f"{pct(after['retain_train_acc'])}, MIA {pct(after['mia'])}.") in note
    assert metric_values(at) == cards  # the cards keep the sample: no number changes meaning
    # another setting: the all-image numbers are not known for it, so they are not shown
    at.select_slider(key="alpha").set_value(100.0).run()
    assert_clean(at)
    note = next(c.value for c in at.caption if c.value.startswith("The cards read a fixed, class-stratified sample"))
    assert "All images at this setting" not in note and at.button(key="live_full")


def test_digits_reads_every_image_and_says_nothing_about_samples():
    at = new_app({"page": "unlearn"}).run()
    assert_clean(at)
    assert not any(c.value.startswith("The cards read a fixed") for c in at.caption)
    assert all("sample of" not in (m.help or "") for m in at.metric)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_eval_sample_refuses_what_is_not_a_positive_count(value, capsys):
    assert main(["unlearn", "--dataset", "digits", "--forget-class", "3", "--eval-sample", value, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("--eval-sample needs at least 1 image" in err or "whole number" in err)


def test_a_sampled_moves_collapse_warning_is_the_clis_read_from_the_guards_retain_pass_only(capsys):
    """On shapes a hand-set move reads a sample, so the collapse warning needs its own pass over the guard's retain
    sample (its forget part is skipped: the warning never reads it). The sentence is the CLI's for the same setting,
    and the page shows it after the cards and the view (it is filled in last, below the cards)."""
    from ui import resources
    from ui.state import RunSetup

    assert main(["unlearn", "--dataset", "shapes", "--model", "resnet18_narrow", "--forget-class", "3", "--method", "ssd",
                 "--alpha", "3", "--lam", "1", "--quiet"]) == 0
    printed = [line.removeprefix("WARNING ") for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING ")]
    assert len(printed) == 1 and printed[0].startswith("Collapse: at α = 3 retain accuracy")
    at = new_app({**SHAPES, "alpha": "3", "lambda": "1"}).run()
    assert_clean(at)
    warning = next(w.value for w in at.warning if w.value.startswith("Collapse:"))
    assert warning.startswith(printed[0] + " ")
    assert at.button(key="guard_fix")  # one click to a setting that keeps the rest
    prepared = resources.peek_prepared(RunSetup(dataset="shapes", model="resnet18_narrow", request=ForgetRequest("class", 3)))
    store = resources.resource_store()
    check = store.peek("collapse_check", (prepared.key, 3.0, 1.0))
    assert check is not None and check.fired and check.forget_after != check.forget_after  # NaN: not computed
    assert store.peek("guard_check", (prepared.key, 3.0, 1.0)) is None  # the full check (two passes) never ran


def test_a_prefetched_neighbour_brings_its_collapse_check_so_a_move_there_runs_no_pass(monkeypatch):
    """On sampled data a hand-set move's collapse warning is a pass of its own; the prefetcher computes it with the
    neighbour's cards (the same check the foreground would make), so a step to a prefetched rung runs none."""
    import time

    from ssd_core.guard import CollapseGuard
    from ui import resources
    from ui.state import RunSetup

    monkeypatch.setenv("UNLEARNING_LAB_PREFETCH", "1")
    with both_cores():
        at = new_app({**SHAPES, "alpha": "3", "lambda": "1"}).run()
        assert_clean(at)
        prepared = resources.peek_prepared(RunSetup(dataset="shapes", model="resnet18_narrow",
                                                    request=ForgetRequest("class", 3)))
        store = resources.resource_store()
        keys = [(prepared.key, a, 1.0) for a in (2.0, 5.0)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(store.peek(n, k) for n in ("live", "collapse_check") for k in keys):
            time.sleep(0.1)
        prefetched = store.peek("collapse_check", keys[1])
        assert prefetched is not None and all(store.peek("live", k) for k in keys)
        model, report = resources.engine(prepared).at(5.0, 1.0)
        fresh = resources.collapse_guard(prepared).check(model, 5.0, 1.0, forget=False, changed=report.changed)
        assert prefetched.retain_after == fresh.retain_after and prefetched.fired == fresh.fired
        passes = []
        check = CollapseGuard.check
        monkeypatch.setattr(CollapseGuard, "check", lambda self, *a, **k: passes.append(a) or check(self, *a, **k))
        at.select_slider(key="alpha").set_value(5.0).run()
    assert_clean(at)
    assert passes == []  # the move read the prefetched check


def test_the_landscape_reads_the_cards_sample_by_default_so_a_cell_shows_the_cards_numbers():
    """On shapes the Landscape's default bound is the live sample, on the cards' class-stratified
    images: the cell at (40, 1.5) has the CLI's --eval-sample numbers, the cards' (test above), and the
    suggested α is measured on the same images as the grid."""
    from ui import landscape, resources
    from ui.state import RunSetup

    sampled = cli("--eval-sample", "200")
    with both_cores():
        prepared = resources.prepare(RunSetup(dataset="shapes", model="resnet18_narrow",
                                              request=ForgetRequest("class", 3)))
        bound = landscape.eval_bound_default(prepared)
        assert bound == prepared.live_sample == 200
        result, _ = landscape.run_landscape(prepared, [40.0], [1.5], max_eval_per_subset=bound)
        # "Suggest α" reads the same images as the grid: its point equals the grid's cell at that α
        suggested = landscape.suggest(prepared, 0.05, 1.5, bound).point
        assert suggested is not None
        again = landscape.run_landscape(prepared, [suggested.alpha], [1.5], max_eval_per_subset=bound)[0].points[0]
    assert result.eval_sizes == sampled["evaluated"]
    cell = result.points[0]
    for key in ("forget_test_acc", "forget_train_acc", "retain_test_acc", "retain_train_acc", "mia"):
        assert getattr(cell, key) == pytest.approx(sampled["after"][key], abs=1e-9), key
    assert dataclasses.replace(again, pareto=False) == dataclasses.replace(suggested, pareto=False)


def test_the_alpha_sweep_reads_the_cards_images_so_its_point_at_the_cards_alpha_is_the_cards_numbers():
    """The sweep along α (Lesson steps 6-7, the Landscape's cut along α) on shapes reads the cards' sample of test
    images, not all 1,000: its row at a slider α has the cards' numbers for that setting, each row equals the same
    images evaluated without the shortcut, and its suggestion compares with the original on those images."""
    from ssd_core.metrics import Evaluator
    from ui import landscape, resources

    with both_cores():
        prepared = resources.prepare(RunSetup(dataset="shapes", model="resnet18_narrow",
                                              request=ForgetRequest("class", 3)))
        rows = {row["alpha"]: row for row in landscape.alpha_sweep(prepared, 1.5)}
        cards = resources.compute_live(prepared, 50.0, 1.5).evaluation
        plain = Evaluator(prepared.split, "cpu", subsets=("forget_test", "retain_test"), with_mia=False,
                          max_per_subset=200, seed=0, stratified=True)
        for alpha in (0.1, 3.0, 50.0, 100.0):  # the first layers changed, the middle, the cards', the fewest
            model, _ = resources.engine(prepared).at(alpha, 1.5)
            alone = plain(model)
            assert (rows[alpha]["forget_acc"], rows[alpha]["retain_acc"]) == (alone.forget_test_acc,
                                                                             alone.retain_test_acc), alpha
    assert landscape.alpha_sweep_evaluator(prepared).sizes() == {"forget_test": 138, "retain_test": 200}
    assert (rows[50.0]["forget_acc"], rows[50.0]["retain_acc"]) == (cards.forget_test_acc, cards.retain_test_acc)
    assert landscape.alpha_sweep_images(prepared) == ("the cards' fixed sample: 138 test images of the forget set "
                                                      "and 200 test images of the rest")
    best = landscape.recommend_alpha(prepared, list(rows.values()))
    kept = [r for r in rows.values() if r["retain_acc"] >= prepared.before.retain_test_acc - 0.02]
    assert best == min(kept, key=lambda r: (r["forget_acc"], -r["alpha"]))
    # the Lesson's step with the sweep says which images it reads
    at = new_app({**SHAPES, "page": "lesson"}).run()
    at.segmented_control(key="lesson_step").set_value("tradeoffs").run()
    assert_clean(at)
    assert any(c.value == f"Every α of the slider, on {landscape.alpha_sweep_images(prepared)}." for c in at.caption)


def test_the_forgetting_signal_on_sampled_data_reads_only_its_own_images_and_the_cards_mia(monkeypatch):
    """On shapes the Forgetting-signal view evaluates only the images it plots (at most 2,000 per group), not every
    image (on Fashion-MNIST a move on this view took a 70,000-image pass, about 10 s); its values are those of a
    pass over every image, and its titles give the MIA the cards show."""
    import numpy as np

    import ui.views as views
    from ssd_core.metrics import split_outputs
    from ui import resources
    from ui.state import RunSetup
    from unlearning_lab import figures

    passes: list[int] = []
    real = views.logits_of
    monkeypatch.setattr(views, "logits_of", lambda model, data, *a, **k: passes.append(len(data)) or real(model, data, *a, **k))
    monkeypatch.setattr(resources, "full_live", lambda *a, **k: pytest.fail("the view evaluated every image"))
    with both_cores():
        at = new_app({**SHAPES, "view": "signal"}).run()
    assert_clean(at)
    split = make_split(load_dataset("shapes"), ForgetRequest("class", 3))
    chosen = figures.signal_sample(split)
    assert sum(passes) == sum(len(i) for i in chosen.values()) < (len(split.train) + len(split.test)) * 0.8
    chart = next(json.loads(e.proto.spec) for e in at.get("plotly_chart")
                 if "Per-sample loss" in json.loads(e.proto.spec)["layout"]["title"]["text"])
    mia = metric_values(at)["MIA"]
    assert f"after (MIA {mia})" in [a["text"] for a in chart["layout"]["annotations"]]
    assert any("The MIA in the titles is the MIA card's" in c.value for c in at.caption)  # and the view says so
    prepared = resources.peek_prepared(RunSetup(dataset="shapes", model="resnet18_narrow", request=ForgetRequest("class", 3)))
    model, _ = resources.engine(prepared).at(40.0, 1.5)
    every = figures.signal_values(split_outputs(model, split, "cpu"), split, "loss")
    shown = figures.signal_values(views._signal_logits(prepared, resources.compute_live(prepared, 40.0, 1.5)), split, "loss")
    for group in every:
        np.testing.assert_allclose(shown[group], every[group], rtol=1e-6, atol=1e-7)
