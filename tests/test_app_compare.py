"""The Compare, Instances and SAPS pages under streamlit.testing (AppTest), checked against ssd_core."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apptest_helpers import set_kept
from streamlit.testing.v1 import AppTest

from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods import run_method
from ssd_core.metrics import Evaluation, evaluate, is_over_forgetting, random_reference_logits
from ssd_core.train import load_or_train

TIMEOUT = 180


def new_app() -> AppTest:
    """A session on class 0 (the references below are for it)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"forget": "class:0"})
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(e.proto.spec)["layout"]["title"]["text"] for e in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def digits_class0():
    dataset = load_dataset("digits")
    model = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
    split = make_split(dataset, ForgetRequest("class", 0))
    random_logits = random_reference_logits("smallcnn", split, "cpu", seed=0)
    return model, split, random_logits


def library_eval(name: str, model, split, random_logits, **options) -> Evaluation:
    result = run_method(name, model, split, device="cpu", seed=0) if name != "ssd" else \
        run_method(name, model, split, device="cpu", **options)
    return evaluate(result.model, split, "cpu", random_forget_logits=random_logits)


def ssd_setting(at: AppTest) -> dict:
    """The α and λ Compare's ssd row ran with."""
    run = next(r for r in at.session_state["_compare_results"].values() if r.method == "ssd")
    return {"alpha": run.config["alpha"], "lam": run.config["lam"]}


@pytest.fixture(scope="module")
def compared() -> AppTest:
    at = new_app()
    at.run()
    at.switch_page("app_pages/compare.py").run()
    assert_clean(at)
    at.multiselect(key="cmp_methods").set_value(["ssd", "finetune", "retrain"]).run()
    at.button(key="cmp_run").click().run()
    assert_clean(at)
    return at


def test_compare_table_matches_library(compared: AppTest, digits_class0) -> None:
    model, split, random_logits = digits_class0
    metrics, gaps = compared.dataframe[0].value, compared.dataframe[1].value  # two tables, each fits the page
    assert list(metrics["method"]) == list(gaps["method"]) == ["ssd", "finetune", "retrain"]
    table = metrics.merge(gaps, on="method")
    rows = {row["method"]: row for _, row in table.iterrows()}
    retrain = library_eval("retrain", model, split, random_logits)
    ssd = library_eval("ssd", model, split, random_logits, **ssd_setting(compared))
    for name, ours in (("retrain", retrain), ("ssd", ssd)):
        row = rows[name]
        assert row["forget test"] == pytest.approx(ours.forget_test_acc, abs=1e-12)
        assert row["retain test"] == pytest.approx(ours.retain_test_acc, abs=1e-12)
        assert row["test"] == pytest.approx(ours.test_acc, abs=1e-12)
        assert row["MIA"] == pytest.approx(ours.mia, abs=1e-12)
        assert row["ZRF"] == pytest.approx(ours.zrf, abs=1e-6)
    # the gold standard's own gaps are all zero; the others' are |metric - retrain's|
    gap_columns = [c for c in table.columns if c.startswith("gap ")]
    assert len(gap_columns) == 7
    assert all(rows["retrain"][c] == 0 for c in gap_columns)
    assert rows["ssd"]["gap forget test"] == pytest.approx(abs(ssd.forget_test_acc - retrain.forget_test_acc), abs=1e-12)
    assert rows["ssd"]["gap test"] == pytest.approx(abs(ssd.test_acc - retrain.test_acc), abs=1e-12)
    # flag column follows ssd_core's rule (class 0 on digits: retrain forgets everything, so nothing over-forgets)
    assert rows["ssd"]["flag"] == ("⚠ over-forgetting" if is_over_forgetting(ssd, retrain) else "")
    assert all(r["seconds"] > 0 for r in rows.values())
    assert rows["retrain"]["data touched"] == "full retain set"
    titles = chart_titles(compared)
    for start in ("Metrics per method", "Gap to retrain", "Per-class test accuracy per method", "Per-sample loss"):
        assert any(t.startswith(start) for t in titles), titles
    labels = [b.label for b in compared.get("download_button")]
    assert "Table (CSV)" in labels and "Results (JSON)" in labels


def test_compare_shows_the_audits_distance_to_retrain(compared: AppTest, digits_class0) -> None:
    from ssd_core.audit.distance import distance
    from ssd_core.metrics import logits_of

    model, split, _ = digits_class0
    audit = next(df.value for df in compared.dataframe if "JS to retrain" in df.value.columns)
    rows = {row["method"]: row for _, row in audit.iterrows()}
    assert rows["retrain"]["KL to retrain"] == 0 and rows["retrain"]["JS to retrain"] == 0
    gold = logits_of(run_method("retrain", model, split, device="cpu", seed=0).model, split.forget_test, "cpu")
    ssd = logits_of(run_method("ssd", model, split, device="cpu", **ssd_setting(compared)).model, split.forget_test, "cpu")
    expected = distance(ssd, gold)
    assert rows["ssd"]["KL to retrain"] == pytest.approx(expected.kl, rel=1e-5)
    assert rows["ssd"]["JS to retrain"] == pytest.approx(expected.js, rel=1e-5)
    assert rows["ssd"]["activation distance"] == pytest.approx(expected.activation, rel=1e-5)


def test_compares_ssd_is_the_unlearn_pages_ssd(compared: AppTest) -> None:
    """The same SSD on both pages: Compare's ssd row runs at the Unlearn page's α and λ (automatic α by
    default, not the paper's 10, which collapses digits class 0 on Compare while Unlearn keeps the rest)."""
    from apptest_helpers import metric_values

    from ssd_core.guard import format_alpha

    setting = ssd_setting(compared)
    assert setting["alpha"] != 10.0
    caption = " ".join(c.value for c in compared.caption)
    assert f"α = {format_alpha(setting['alpha'])} (automatic)" in caption and "Unlearn page's setting" in caption
    row = next(r for _, r in compared.dataframe[0].value.iterrows() if r["method"] == "ssd")
    compared.switch_page("app_pages/unlearn.py").run()
    assert_clean(compared)
    cards = metric_values(compared)
    assert cards["Retain (test)"] == f"{100 * row['retain test']:.1f}%"
    assert cards["Forget (test)"] == f"{100 * row['forget test']:.1f}%"
    compared.switch_page("app_pages/compare.py").run()
    assert_clean(compared)


def test_compare_rerender_reuses_results(compared: AppTest) -> None:
    results = compared.session_state["_compare_results"]
    before = {k: id(v) for k, v in results.items()}
    assert len(before) == 3
    compared.run()  # a re-render (no click): nothing is recomputed
    assert_clean(compared)
    assert {k: id(v) for k, v in compared.session_state["_compare_results"].items()} == before
    assert len(compared.dataframe[0].value) == 3


def test_over_forgetting_flag_in_table() -> None:
    """The table marks a method whose forget accuracy is far below retrain's, and only that one."""
    from ui.compare import OVER_FORGETTING, comparison_table
    from ui.method_runs import MethodRun

    def run(method: str, forget: float) -> MethodRun:
        ev = Evaluation(0.95, forget, 1.0, forget, 0.9, 0.5, [], [], zrf=0.8)
        return MethodRun(method, {}, ev, None, {"total": 1.0}, "x")

    table = comparison_table({"retrain": run("retrain", 0.9), "ssd": run("ssd", 0.5), "finetune": run("finetune", 0.85)})
    flags = dict(zip(table["method"], table["flag"]))
    assert flags == {"retrain": "", "ssd": OVER_FORGETTING, "finetune": ""}
    assert dict(zip(table["method"], table["gap forget test"]))["ssd"] == pytest.approx(0.4)
    no_gold = comparison_table({"ssd": run("ssd", 0.5)})
    assert no_gold["flag"].tolist() == [""] and no_gold["gap forget test"].isna().all()


def test_instances_page_unlearns_picked_images(digits_class0) -> None:
    model, _, _ = digits_class0
    at = new_app()
    at.run()
    at.switch_page("app_pages/instances.py").run()
    assert_clean(at)
    assert len([c for c in at.checkbox if (c.key or "").startswith("inst_cb_")]) == 40  # one page of the gallery
    at.session_state["inst_picked"] = [1, 2, 3, 4]
    set_kept(at, inst_variants=["naive", "adv+imp"], inst_cfg_l2ul_max_steps=20, inst_cfg_l2ul_adv_steps=10)
    at.run()
    assert at.checkbox(key="inst_cb_1").value and not at.checkbox(key="inst_cb_0").value
    at.button(key="inst_run").click().run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["index"].tolist() == [1, 2, 3, 4]
    split = make_split(load_dataset("digits"), ForgetRequest("indices", indices=(1, 2, 3, 4)))
    library = run_method("l2ul", model, split, device="cpu", variant="adv+imp", max_steps=20, adv_steps=10, seed=0)
    classes = split.dataset.classes
    assert table["adv+imp: after"].tolist() == [classes[r["after"]] for r in library.diagnostics["instances"]]
    assert table["adv+imp: forgotten"].tolist() == [r["after"] != r["label"] for r in library.diagnostics["instances"]]
    labels = [m.label for m in at.metric]
    assert "Test accuracy before" in labels and "naive: test accuracy after" in labels
    # the picked images become the sidebar's "picked samples" request
    at.button(key="inst_to_sidebar").click().run()
    assert_clean(at)
    assert at.session_state["_lab_state"].forget_kind == "indices"
    assert at.session_state["_lab_state"].forget_indices == "1-4"
    assert at.text_input(key="setup_forget_indices").value == "1-4"
    assert at.query_params["forget"] == "indices:1-4"


def test_saps_page_selection_and_sweep(digits_class0) -> None:
    model, split, _ = digits_class0
    at = new_app()
    at.run()
    at.switch_page("app_pages/saps.py").run()
    assert_clean(at)
    set_kept(at, saps_rules=["sharpness", "magnitude", "random"], saps_samples=64, saps_sweep_p=[1.0, 2.0],
             saps_sweep_rules=["sharpness"], saps_epochs=1)
    at.run()
    at.button(key="saps_select").click().run()
    assert_clean(at)
    spec = next(json.loads(e.proto.spec) for e in at.get("plotly_chart")
                if json.loads(e.proto.spec)["layout"]["title"]["text"].startswith("Selected parameters per layer"))
    assert [t["name"] for t in spec["data"]] == ["sharpness", "magnitude", "random"]
    at.button(key="saps_sweep").click().run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert table["p (%)"].tolist() == [1.0, 2.0]
    library = run_method("saps", model, split, device="cpu", p=1.0, epochs=1, hessian_samples=64, seed=0)
    library_eval = evaluate(library.model, split, "cpu")
    assert table["forget test"].iloc[0] == pytest.approx(library_eval.forget_test_acc, abs=1e-12)
    assert table["retain test"].iloc[0] == pytest.approx(library_eval.retain_test_acc, abs=1e-12)
    assert any(t.startswith("Forget and retain test accuracy against p") for t in chart_titles(at))


def test_compare_says_how_long_each_method_takes_before_it_runs(compared: AppTest) -> None:
    """#26 'long work is honest': before Run, one sentence gives each chosen method's expected time here from
    the measured training speed (finetune: its 8 epochs over the retain set; retrain: read from disk when a
    model is there; a method with its own schedule: no number, not a guess). Methods already run drop out."""
    import re

    at = new_app()
    at.run()
    at.switch_page("app_pages/compare.py").run()
    at.multiselect(key="cmp_methods").set_value(["ssd", "finetune", "retrain", "unsir"]).run()
    assert_clean(at)
    sentence = next(c.value for c in at.caption if c.value.startswith("Expected here"))
    assert re.search(r"finetune: (a few seconds|about \d+ (s|min)) \(8 epochs over the retain set\)", sentence), sentence
    assert re.search(r"ssd: (a few seconds|about \d+ s)", sentence) and "unsir: no estimate" in sentence
    assert re.search(r"retrain: (read from disk \((shipped|cache), no training\)|about \d+ (s|min) \(\d+ epochs\))", sentence)
    compared.run()
    ran = [c.value for c in compared.caption if c.value.startswith("Expected here")]
    assert not ran, ran  # ssd, finetune and retrain ran in that session: nothing left to estimate
