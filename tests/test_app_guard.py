"""The first screen with automatic alpha and the collapse guard, clicked through like a user would:
auto on class 3, what alpha 10 would have done, the guard's warning and its one-click fix, and the
numbers against the CLI for the same settings."""

from __future__ import annotations

import json

from apptest_helpers import assert_clean, metric_values, new_app, shown_text

from ssd_core.cli import main
from ssd_core.guard import format_alpha


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _cli(capsys, *args: str) -> dict:
    assert main(["unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class", "3", "--quiet",
                 "--json", "-", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _printed(capsys, *args: str) -> str:
    """The CLI's text summary for the same request."""
    assert main(["unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class", "3", "--quiet", *args]) == 0
    return capsys.readouterr().out


def test_first_screen_auto_then_alpha_10_then_the_guard_fix(capsys):
    at = new_app().run()
    assert_clean(at)
    assert at.query_params["forget"] == "class:3" and at.query_params["alpha"] == "auto"
    assert at.toggle(key="alpha_auto").value
    cards = metric_values(at)
    auto = _cli(capsys, "--alpha", "auto")
    assert cards["Forget (test)"] == _pct(auto["after"]["forget_test_acc"]) == "0.0%"
    assert cards["Retain (test)"] == _pct(auto["after"]["retain_test_acc"])
    assert cards["MIA"] == _pct(auto["after"]["mia"])
    captions = [shown_text(c.value) for c in at.caption]
    assert any(c.startswith(f"Auto: α = {format_alpha(auto['diagnostics']['alpha'])}.") for c in captions), captions
    infos = [shown_text(i.value) for i in at.info]
    assert any("At the paper's α = 10 this request collapses" in i for i in infos), infos

    at.button(key="show_paper_alpha").click().run()  # the one line's link: what alpha 10 does
    assert_clean(at)
    assert not at.toggle(key="alpha_auto").value and at.query_params["alpha"] == "10"
    paper = _cli(capsys, "--alpha", "10")
    cards = metric_values(at)
    assert cards["Retain (test)"] == _pct(paper["after"]["retain_test_acc"])
    warnings = [shown_text(w.value) for w in at.warning]
    assert any(w.startswith("Collapse: at α = 10 retain accuracy on a training sample fell") for w in warnings)
    printed = _printed(capsys, "--alpha", "10")  # the CLI prints the page's sentence itself (#26.11)
    line = next(line for line in printed.splitlines() if line.startswith("WARNING "))
    assert any(w.startswith(line.removeprefix("WARNING ")) for w in warnings), (line, warnings)

    at.button(key="guard_fix").click().run()  # one click to a setting that keeps the rest
    assert_clean(at)
    fixed = _cli(capsys, "--alpha", "10", "--guard")
    alpha = fixed["diagnostics"]["alpha"]
    assert at.query_params["alpha"] == f"{alpha:g}" and not at.toggle(key="alpha_auto").value
    assert any(shown_text(s.value).startswith(f"Collapse guard: α = {alpha:.3g} keeps retain accuracy within 3 points")
               for s in at.success)
    cards = metric_values(at)
    assert cards["Forget (test)"] == _pct(fixed["after"]["forget_test_acc"]) == "0.0%"
    assert cards["Retain (test)"] == _pct(fixed["after"]["retain_test_acc"])
    assert fixed["before"]["retain_test_acc"] - fixed["after"]["retain_test_acc"] <= 0.03
    assert not at.warning  # the rest is kept: no collapse warning

    at.toggle(key="alpha_auto").set_value(True).run()  # back to automatic
    assert_clean(at)
    assert at.query_params["alpha"] == "auto"
    assert metric_values(at)["Retain (test)"] == _pct(auto["after"]["retain_test_acc"])


def test_turning_auto_off_keeps_the_chosen_alpha_on_the_slider():
    at = new_app({"forget": "class:5"}).run()
    assert_clean(at)
    before = metric_values(at)
    at.toggle(key="alpha_auto").set_value(False).run()
    assert_clean(at)
    alpha = float(at.query_params["alpha"])
    assert at.select_slider(key="alpha").value == alpha
    assert metric_values(at)["Forget (test)"] == before["Forget (test)"]


def test_one_button_to_the_papers_alpha_at_a_time():
    """#26.12: with automatic α on, "Show α = 10" is the way to the paper's α (no second "Paper's α" button); with α
    set by hand, "Paper's α and λ" resets both."""
    at = new_app().run()
    keys = [b.key for b in at.button]
    assert "show_paper_alpha" in keys and "paper_defaults" not in keys
    at.button(key="show_paper_alpha").click().run()
    keys = [b.key for b in at.button]
    assert "paper_defaults" in keys and "show_paper_alpha" not in keys
