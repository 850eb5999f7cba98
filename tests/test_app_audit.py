"""The Audit page, the Lesson's "hiding is not forgetting" step, the audit columns on Compare and
the report's audit section, driven like a user would (AppTest) and checked against the library."""

from __future__ import annotations

import pytest
from apptest_helpers import assert_clean, click_nav, new_app, set_kept, shown_text

from ssd_core.audit.runner import audit_request
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.train import load_or_train
from unlearning_lab.lesson import LessonState, check_hiding, hiding_truth

QUERY = {"page": "audit", "forget": "class:3"}


@pytest.fixture(scope="module")
def library_audit():
    dataset = load_dataset("digits")
    split = make_split(dataset, ForgetRequest("class", target=3))
    original = load_or_train(dataset, "smallcnn").model
    return audit_request(original, split, "smallcnn", {"assd": {}})



def test_audit_page_shows_the_library_verdicts_and_survives_a_page_switch(library_audit):
    at = new_app(QUERY).run()
    assert_clean(at)
    assert at.title[0].value == "Did it really forget?"
    set_kept(at, audit_methods=["assd"])
    at.run()
    at.button(key="audit_run").click().run()
    assert_clean(at)
    from ui.audit import verdict_value

    verdicts = at.dataframe[0].value
    expected = library_audit["audit"]["verdicts"]["assd"]
    assert list(verdicts["verdict"].str.contains("not forgotten")) == [row["forgotten"] is False for row in expected]
    assert list(verdicts["this method"]) == [verdict_value(row["test"], row["value"]) for row in expected]
    assert list(verdicts["retrained"]) == [verdict_value(row["test"], row["retrained"]) for row in expected]
    assert all(any(row["sentence"][:30] in m.value.replace("\\", "") for m in at.markdown) for row in expected)
    numbers = at.dataframe[1].value.set_index("model")
    assert numbers.loc["assd", "JS to retrain (forget test)"] == pytest.approx(
        library_audit["audit"]["unlearned"]["assd"]["distance"]["forget_test"]["js"], rel=1e-9)
    assert numbers.loc["retrain", "steps to relearn 50%"] == library_audit["audit"]["retrained"]["relearn"]["steps_to_target"]
    assert any("python -m ssd_core audit --dataset digits --model smallcnn --forget-class 3" in c.value for c in at.caption)
    # away and back: the result is still there, for the same setup
    click_nav(at, "compare")
    assert_clean(at)
    click_nav(at, "audit")
    assert_clean(at)
    assert len(at.dataframe) >= 2 and list(at.dataframe[0].value["retrained"]) == list(verdicts["retrained"])


def test_hiding_check_follows_the_measured_curves():
    base = dict(after={"forget_test_acc": 0.0}, relearn_measured=True)
    hidden = LessonState(relearn_steps=3, retrained_relearn_steps=7, **base)
    assert hiding_truth(hidden) == "hidden"
    assert check_hiding(LessonState(**{**hidden.__dict__, "answer": "hidden"}))[0]
    assert not check_hiding(LessonState(**{**hidden.__dict__, "answer": "removed"}))[0]
    removed = LessonState(relearn_steps=None, retrained_relearn_steps=7, **base)  # never back within the steps
    assert hiding_truth(removed) == "removed"
    assert check_hiding(LessonState(**{**removed.__dict__, "answer": "removed"}))[0]
    assert hiding_truth(LessonState()) is None
    not_forgotten = LessonState(after={"forget_test_acc": 0.6}, relearn_measured=True, answer="hidden",
                                relearn_steps=0, retrained_relearn_steps=7)
    assert not check_hiding(not_forgotten)[0]


def test_lesson_hiding_step_measures_both_curves_and_checks_the_answer():
    at = new_app({"page": "lesson", "forget": "class:3"}).run()
    set_kept(at, lesson_step="hiding")
    at.run()
    assert_clean(at)
    assert any("Hiding is not forgetting" in s.value for s in at.subheader)
    truth_state = at.session_state["_lesson_relearn"]
    curves = next(v for k, v in truth_state.items() if k[0] != "retrained")
    mine, gold = curves[0].steps_to_target, curves[1].steps_to_target
    truth = "hidden" if (mine if mine is not None else 31) < 0.5 * (gold if gold is not None else 31) else "removed"
    wrong = "removed" if truth == "hidden" else "hidden"
    at.radio(key="lesson_answer_hiding").set_value(wrong).run()
    assert not at.success
    at.radio(key="lesson_answer_hiding").set_value(truth).run()
    assert at.success and "Right" in at.success[0].value


def test_the_report_has_an_audit_section_with_the_verdicts(library_audit):
    from unlearning_lab import report

    html = report.build_report(setup={"dataset": "digits"}, before={}, after={}, figures={}, params={}, environment={},
                               seed=0, command="python -m ssd_core unlearn", audit={**library_audit,
                                                                                     "command": "python -m ssd_core audit"})
    assert 'id="audit"' in html and 'id="audit-table"' in html and "python -m ssd_core audit" in html
    for row in library_audit["audit"]["verdicts"]["assd"]:
        mark = {True: "forgotten", False: "not forgotten", None: "no verdict"}[row["forgotten"]]
        assert f'data-audit="assd:{row["test"]}">{mark}<' in html
    assert "_report" not in html  # the live object is not embedded
    # #24.6: the layer rows too, one per model and block, with the library's CKA
    assert 'id="audit-layers"' in html and 'data-audit="assd:representation"' in html
    last = library_audit["audit"]["unlearned"]["assd"]["layers"][-1]
    assert (f"<tr><td>assd</td><td>features</td><td>{last['cka_original_forget']:.3f}</td>"
            f"<td>{last['cka_retrained_forget']:.3f}</td>") in html


def test_audit_page_says_what_it_will_train_and_lets_you_choose_the_shadows(fashion_mnist):
    """#26.10: before anything runs, the page says what the audit trains and about how long it takes here; the
    number of LiRA shadows (or none) is a choice, as with the CLI's --shadows."""
    at = new_app({"page": "audit", "dataset": "fashion_mnist", "forget": "class:0"}).run()
    assert_clean(at)
    shadows = at.selectbox(key="audit_shadows")
    assert shadows.value == 8 and shadows.options[-1] == "none: skip LiRA"
    caption = next(shown_text(c.value) for c in at.caption if "retrained reference" in c.value)
    assert "The retrained reference is shipped (no training)." in caption  # class 0 ships
    assert "LiRA uses 8 ready shadow models (no training)." in caption
    shadows.set_value(4).run()
    caption = next(shown_text(c.value) for c in at.caption if "retrained reference" in c.value)
    assert "LiRA first trains 4 shadow models (about " in caption and "min here, then cached)" in caption
    at.selectbox(key="audit_shadows").set_value(0).run()
    assert any("No LiRA row: the per-example attack is skipped." in shown_text(c.value) for c in at.caption)


def test_audit_runs_with_the_chosen_shadows_and_the_command_says_so():
    at = new_app(QUERY).run()
    set_kept(at, audit_methods=["assd"])
    at.run()
    at.selectbox(key="audit_shadows").set_value(0).run()
    at.selectbox(key="audit_embedding").set_value("umap").run()  # the test extras install umap-learn
    at.button(key="audit_run").click().run()
    assert_clean(at)
    verdicts = at.dataframe[0].value.set_index("forgotten …")
    assert verdicts.loc["against the per-example attack", "verdict"] == "– no verdict"  # LiRA was not run
    assert any("LiRA did not run: no shadow models were used" in shown_text(m.value) for m in at.markdown)
    assert any("--shadows 0 --embedding umap" in c.value for c in at.caption)
    assert any("flattened to 2-D (UMAP;" in c.value for c in at.caption)


def test_the_audits_ssd_is_the_unlearn_pages_ssd(tmp_path, capsys):
    """With α set by hand on the Unlearn page (a link with alpha=30, lambda=1.5) the audit's ssd runs at that
    setting, not at its default: the page says so, its command carries it, and the command gives the page's
    verdict numbers."""
    import json
    import shlex

    from ssd_core.cli import main

    at = new_app({**QUERY, "alpha": "30", "lambda": "1.5"}).run()
    set_kept(at, audit_methods=["ssd"])
    at.run()
    assert any("α = 30 (set by hand) and λ = 1.5" in c.value for c in at.caption), [c.value for c in at.caption]
    at.selectbox(key="audit_shadows").set_value(0).run()
    at.button(key="audit_run").click().run()
    assert_clean(at)
    command = next(c.value for c in at.caption if "python -m ssd_core audit" in c.value).split("`")[1]
    assert "--method ssd --alpha 30 --lambda 1.5" in command and "--shadows 0" in command
    page = list(at.dataframe[0].value["this method"])
    out = tmp_path / "audit.json"
    assert main(shlex.split(command)[3:] + ["--quiet", "--json", str(out)]) == 0
    capsys.readouterr()
    from ui.audit import verdict_value

    cli = json.loads(out.read_text())
    assert cli["methods"]["ssd"]["alpha"] == 30 and cli["methods"]["ssd"]["lam"] == 1.5
    assert page == [verdict_value(row["test"], row["value"]) for row in cli["audit"]["verdicts"]["ssd"]]


def test_audit_page_varies_the_training_seed_like_the_cli(tmp_path, capsys):
    """#24.4 on the page: "The seeds vary: the training" audits each method from that many original models (the
    shipped digits seeds), says what it will train first, and gives the intervals the CLI's --train-seeds gives."""
    import json
    import shlex

    from ssd_core.cli import main

    at = new_app(QUERY).run()
    set_kept(at, audit_methods=["assd"])
    at.run()
    assert at.segmented_control(key="audit_seed_kind").disabled  # one seed: nothing to vary
    at.number_input(key="audit_seeds").set_value(3).run()
    at.selectbox(key="audit_shadows").set_value(0).run()
    at.segmented_control(key="audit_seed_kind").set_value("training").run()
    caption = next(shown_text(c.value) for c in at.caption if "retrained reference" in c.value)
    assert "3 training seeds: 2 more original models, each with its own retrained reference" in caption
    at.button(key="audit_run").click().run()
    assert_clean(at)
    assert any(s.value == "Over training seeds (original models)" for s in at.subheader)
    command = next(c.value for c in at.caption if "python -m ssd_core audit" in c.value).split("`")[1]
    assert "--train-seeds 3" in command and "--seeds" not in command.replace("--train-seeds", "")
    table = next(d.value for d in at.dataframe if "95% low" in d.value.columns).set_index("metric")
    out = tmp_path / "audit.json"
    assert main(shlex.split(command)[3:] + ["--quiet", "--json", str(out)]) == 0
    capsys.readouterr()
    spread = json.loads(out.read_text())["train_seeds"]["assd"]["retain_test_acc"]
    assert table.loc["retain_test_acc", "seeds"] == 3
    assert table.loc["retain_test_acc", "mean"] == pytest.approx(spread["mean"], abs=1e-12)
    assert table.loc["retain_test_acc", "95% low"] == pytest.approx(spread["lo"], abs=1e-12)
