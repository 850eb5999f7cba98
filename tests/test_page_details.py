"""Small things a user reads on the pages, each checked against the code that computes them.

- a zero change on a metric card reads "±0.0 pp" with no coloured arrow (Unlearn and Forget instances);
- Retrain's settings in Compare show its real schedule (no ``epochs 0``, ``lr 0``, empty ``model_name``);
- when nothing is dampened the page says why in one sentence, and what to try;
- the page's results JSON names SSD's report ``diagnostics.report``, as the CLI does.

Fast: pure functions where they suffice, AppTest on digits otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from apptest_helpers import assert_clean, metric_values, new_app, set_kept

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.metrics import evaluate
from ssd_core.models import get_spec
from ssd_core.train import load_or_train

# ---------------------------------------------------------------------------------------------
# A zero change has no coloured arrow


def test_metric_delta_reads_plus_minus_zero_without_an_arrow_when_nothing_changed():
    from ui.live import metric_delta

    still = {"delta": "±0.0 pp", "delta_color": "off", "delta_arrow": "off"}
    assert metric_delta(0.5, 0.5) == still
    assert metric_delta(0.5, 0.5004, "inverse") == still  # +0.04 pp: rounds to nothing
    assert metric_delta(0.5, 0.4996) == still  # -0.04 pp: never "-0.0 pp"
    assert metric_delta(0.9, 0.6, "inverse") == {"delta": "-30.0 pp", "delta_color": "inverse", "delta_arrow": "auto"}
    assert metric_delta(0.25, 0.3) == {"delta": "+5.0 pp", "delta_color": "normal", "delta_arrow": "auto"}
    assert metric_delta(0.5, 0.4994)["delta"] == "-0.1 pp"  # the smallest shown change keeps its sign and arrow
    assert metric_delta(None, 0.5)["delta"] is None and metric_delta(0.5, None)["delta"] is None


def test_forget_instances_cards_show_the_change_as_the_unlearn_cards_do():
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    from ui.live import metric_delta

    at = new_app({"forget": "class:0"})
    at.run()
    at.switch_page("app_pages/instances.py").run()
    assert_clean(at)
    at.session_state["inst_picked"] = [1, 2]
    set_kept(at, inst_variants=["naive"], inst_cfg_l2ul_max_steps=10)
    at.run()
    at.button(key="inst_run").click().run()
    assert_clean(at)
    card = next(m for m in at.metric if m.label == "naive: test accuracy after")
    run = next(iter(at.session_state["_inst_results"].values()))
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    before = evaluate(model, make_split(dataset, ForgetRequest("class", 0)), "cpu").test_acc
    expected = metric_delta(before, run.evaluation.test_acc)
    assert card.value == f"{100 * run.evaluation.test_acc:.1f}%"
    assert card.proto.delta == expected["delta"]
    assert re.fullmatch(r"±0\.0 pp|[+-]\d+\.\d pp", card.proto.delta), card.proto.delta
    if expected["delta"] == "±0.0 pp":  # no change: grey, no arrow
        assert card.proto.color == MetricProto.MetricColor.GRAY
        assert card.proto.direction == MetricProto.MetricDirection.NONE
    else:
        assert card.proto.direction != MetricProto.MetricDirection.NONE


# ---------------------------------------------------------------------------------------------
# Retrain's settings in Compare


@pytest.mark.parametrize(("dataset", "model"), [("digits", "smallcnn"), ("shapes", "resnet18_narrow"),
                                                ("fashion_mnist", "resnet18_narrow")])
def test_retrain_defaults_are_the_originals_schedule(dataset, model):
    from ssd_core.train import DATASET_SCHEDULES, TrainConfig
    from ui.method_runs import architecture_defaults

    spec, schedule = get_spec(model), TrainConfig.default(dataset, model)
    values, note = architecture_defaults("retrain", schedule)
    assert values == {"epochs": schedule.epochs, "lr": schedule.lr, "batch_size": schedule.batch_size}
    assert all(v > 0 for v in values.values())
    assert note.startswith(f"Defaults: {model}'s own training schedule ({schedule.epochs} epochs, {schedule.optimizer} "
                           f"with learning rate {schedule.lr:g}, batch {schedule.batch_size})")
    # the architecture's registry schedule unless the dataset changes it (Fashion-MNIST's resnet18_narrow)
    changed = DATASET_SCHEDULES.get((dataset, model), {})
    assert (schedule.epochs, schedule.optimizer) == (changed.get("epochs", spec.epochs), changed.get("optimizer", spec.optimizer))
    assert architecture_defaults("ssd", schedule) == ({}, None)  # only retrain's 0 stands for the original's value
    assert architecture_defaults("retrain", None) == ({}, None)


def test_compare_shows_retrains_real_schedule_and_no_model_name():
    at = new_app({"forget": "class:0"})
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert_clean(at)
    assert "retrain" in at.multiselect(key="cmp_methods").value  # one of the default methods
    spec = get_spec("smallcnn")
    assert (spec.epochs, spec.lr, spec.batch_size) == (15, 0.001, 64)
    assert at.number_input(key="cmp_cfg_retrain_epochs").value == 15
    assert at.number_input(key="cmp_cfg_retrain_lr").value == pytest.approx(0.001)
    assert at.number_input(key="cmp_cfg_retrain_batch_size").value == 64
    labels = [w.label for kind in ("text_input", "number_input", "selectbox") for w in at.get(kind)]
    assert "model_name" not in labels
    assert not [k for k in at.session_state if str(k).startswith("cmp_cfg_retrain_model_name")]
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Defaults: smallcnn's own training schedule (15 epochs, adam with learning rate 0.001, "
                            "batch 64)") for c in captions), captions


# ---------------------------------------------------------------------------------------------
# Nothing dampened: why, and what to try


def test_nothing_dampened_says_why_in_one_sentence_and_what_to_try():
    from ssd_core.dampening import alpha_selecting, dampen, finite_ratios
    from ssd_core.methods.ssd import ssd_importances
    from ui.live import FEW_DAMPENED

    # the library: the exact Fisher estimator at alpha 10 on digits class 0 selects nothing
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    split = make_split(dataset, ForgetRequest("class", 0))
    importances = ssd_importances(model, split, "fisher_exact", 64, device="cpu")
    _, report = dampen(model, importances.full, importances.forget, 10.0, 1.0)
    assert report.total_selected == 0
    ratios = finite_ratios(importances.full, importances.forget)
    largest = float(ratios.max())
    suggestion = alpha_selecting(ratios, FEW_DAMPENED)
    assert largest < 10 and suggestion is not None and suggestion < largest
    assert int((ratios > suggestion).sum()) >= FEW_DAMPENED

    # the page, on the same settings
    at = new_app({"forget": "class:0", "alpha": "10", "estimator": "fisher_exact"})
    at.run()
    assert_clean(at)
    assert metric_values(at)["Dampened"] == "0"
    notes = [i.value for i in at.info if "dampened" in i.value.lower()]
    assert len(notes) == 1, [i.value for i in at.info]
    note = notes[0]
    why, _, to_try = note.partition(". ")
    assert why == (f"Nothing is dampened: at α = 10 no parameter is more than 10 times as important to the forget set "
                   f"as to all the data (the largest ratio I_f / I_D here is {largest:.3g})")
    assert to_try == (f"α = {suggestion:.3g} would dampen {FEW_DAMPENED}; lower α on the slider, or try the batch "
                      "Fisher estimator, whose importances are more spread out.")

    # and with the batch Fisher estimator at the same alpha there is no such note
    at = new_app({"forget": "class:0", "alpha": "10"})
    at.run()
    assert int(metric_values(at)["Dampened"].replace(",", "")) >= FEW_DAMPENED
    assert not [i.value for i in at.info if "dampened" in i.value.lower()]


def test_alpha_selecting_is_just_below_the_countth_largest_ratio():
    import torch

    from ssd_core.dampening import alpha_selecting

    ratios = torch.tensor([0.0, 1.0, 5.0, 3.0, 0.5], dtype=torch.float64)
    alpha = alpha_selecting(ratios, 2)
    assert 2.999 < alpha < 3.0 and int((ratios > alpha).sum()) == 2
    assert alpha_selecting(ratios, 4) < 0.5
    assert alpha_selecting(ratios, 5) is None  # only four ratios are positive
    assert alpha_selecting(ratios, 0) is None


# ---------------------------------------------------------------------------------------------
# The page's results JSON and the CLI's JSON name the report alike


def test_results_json_names_the_report_like_the_cli(tmp_path):
    from ssd_core.cli import main
    from ui import resources
    from ui.export_panel import results_payload
    from ui.state import RunSetup
    from unlearning_lab import export

    prepared = resources.prepare(RunSetup(request=ForgetRequest("class", 0)))  # digits / smallcnn / SSD
    live = resources.compute_live(prepared, 10.0, 1.0)
    page = json.loads(export.results_json(results_payload(prepared, live)))

    path = tmp_path / "cli.json"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class", "0", "--method", "ssd",
                     "--alpha", "10", "--lam", "1", "--json", str(path), "--quiet"])
    assert code == 0
    cli = json.loads(path.read_text())

    assert "dampening" not in page and "report" not in page  # no second name at the top level
    assert set(page) <= set(cli), set(page) - set(cli)  # every key of the page's JSON is one of the CLI's
    ours, theirs = page["diagnostics"]["report"], cli["diagnostics"]["report"]
    assert set(ours) == set(theirs) == {"alpha", "lam", "total_params", "total_selected", "fraction_selected", "layers"}
    assert ours["total_selected"] == theirs["total_selected"] == live.report.total_selected > 0
    assert ours["total_params"] == theirs["total_params"]
    assert (ours["alpha"], ours["lam"]) == (theirs["alpha"], theirs["lam"]) == (10.0, 1.0)
    assert ([(layer["name"], layer["selected"]) for layer in ours["layers"]]
            == [(layer["name"], layer["selected"]) for layer in theirs["layers"]])
    assert page["after"]["forget_test_acc"] == pytest.approx(cli["after"]["forget_test_acc"], abs=1e-9)
    # the timings are the run's: its total covers preparing (I_D, I_f, the original) and this alpha, as the CLI's
    steps = page["seconds"]
    assert {"data", "original_model", "importance_full", "importance_forget", "dampening", "evaluation", "total"} <= set(steps)
    assert set(steps) <= set(cli["seconds"]), set(steps) - set(cli["seconds"])
    assert steps["total"] == pytest.approx(sum(v for k, v in steps.items() if k != "total"))
    assert steps["total"] >= steps["importance_forget"] + steps["dampening"] > 0


def test_long_work_says_the_time_left_once_its_pace_is_known():
    from ui.layout import time_left

    assert time_left(0.5, 1.0) == "" and time_left(0.01, 30.0) == "" and time_left(1.0, 60.0) == ""  # not yet / done
    assert time_left(0.5, 20.0) == " · about 20 s left"
    assert time_left(0.9, 9.0) == " · about 5 s left"
    assert time_left(0.25, 60.0) == " · about 3 min left"


def test_the_dampened_cards_second_line_is_short():
    """'32.98% of 701,208' wrapped onto two lines in the card at 1400 px (#26.12): the total is shortened there
    (the card's help gives it in full)."""
    from unlearning_lab.text import short_count

    assert [short_count(n) for n in (5_000, 159_402, 701_208, 11_173_962)] == ["5,000", "159k", "701k", "11.2M"]
