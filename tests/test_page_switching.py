"""Every number on screen is the one its URL stands for, whatever was clicked before.

Users click from page to page, go back, share links and change their minds. These tests open a
page on a link, click to another page (which clears the URL, as Streamlit's navigation does) and
compare everything shown (metric cards, every figure's data, the URL) with a fresh session opened
on the same URL, and the Unlearn page's cards with the CLI's JSON for the same settings. A seeded
random walk does the same after every step.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from apptest_helpers import PAGES, assert_clean, both_cores, chart_data, click_nav, link_of, metric_values, new_app

# a non-default setup: the other dataset, its model, another class, alpha off the slider's ladder
SETUP = {"dataset": "shapes", "model": "resnet18_narrow", "forget": "class:3", "method": "ssd", "alpha": "40",
         "lambda": "1.5"}


def snapshot(at) -> dict:
    """What the page shows that a number could be wrong in: cards and figures (titles and data)."""
    return {"metrics": metric_values(at), "charts": chart_data(at), "titles": [t.value for t in at.title]}


def pct(text: str) -> float | None:
    return None if text == "n/a" else float(text.rstrip("%")) / 100


@pytest.fixture(scope="module")
def fresh() -> dict[str, dict]:
    """Each page opened on the link by a new session, after emptying every process-wide cache."""
    import streamlit as st

    st.cache_resource.clear()
    out = {}
    with both_cores():
        for page in PAGES:
            at = new_app({**SETUP, "page": page})
            at.run()
            assert_clean(at)
            out[page] = {"view": snapshot(at), "query": link_of(at)}
    return out


@pytest.fixture(scope="module")
def cli_result() -> dict:
    """The CLI's JSON for the same settings (its main(), in this process: the same code path as
    `python -m ssd_core`, with this process's dataset and importance caches)."""
    import contextlib
    import io

    from ssd_core.cli import main

    out = io.StringIO()
    # shapes has 5,000 images: the page's cards read its live sample, the CLI's --eval-sample (#25)
    with both_cores(), contextlib.redirect_stdout(out):
        code = main(["unlearn", "--dataset", "shapes", "--model", "resnet18_narrow", "--forget-class", "3", "--method",
                     "ssd", "--alpha", "40", "--lam", "1.5", "--eval-sample", "200", "--json", "-", "--quiet"])
    assert code == 0
    return json.loads(out.getvalue())


def test_the_link_is_followed_and_equals_the_cli(fresh, cli_result):
    unlearn = fresh["unlearn"]
    assert unlearn["query"] == {**SETUP, "page": "unlearn"}
    cards, after = unlearn["view"]["metrics"], cli_result["after"]
    assert int(cards["Dampened"].replace(",", "")) == cli_result["diagnostics"]["report"]["total_selected"]
    for label, key in (("Forget (test)", "forget_test_acc"), ("Forget (train)", "forget_train_acc"),
                       ("Retain (test)", "retain_test_acc"), ("Retain (train)", "retain_train_acc"), ("MIA", "mia")):
        assert pct(cards[label]) == pytest.approx(after[key], abs=5e-4), label
    per_class = next(d for t, d in unlearn["view"]["charts"].items() if t.startswith("Per-class test accuracy"))
    after_bars = per_class[1]["y"]
    if isinstance(after_bars, dict):  # plotly's typed array
        import base64

        import numpy as np

        after_bars = np.frombuffer(base64.b64decode(after_bars["bdata"]), dtype=np.dtype(after_bars["dtype"])).tolist()
    assert after_bars == pytest.approx([100 * v for v in after["per_class_acc"]])
    lesson = fresh["lesson"]["view"]["charts"]
    assert any(t.startswith("Per-class test accuracy") for t in lesson)  # the lesson's first figure, same run


@pytest.mark.parametrize("start, target", list(itertools.permutations(PAGES, 2)))
def test_arriving_from_another_page_shows_what_a_fresh_session_shows(fresh, start, target):
    at = new_app({**SETUP, "page": start})
    at.run()
    assert_clean(at)
    assert snapshot(at) == fresh[start]["view"]
    click_nav(at, target)
    assert_clean(at)
    assert link_of(at) == fresh[target]["query"] == {**SETUP, "page": target}
    assert snapshot(at) == fresh[target]["view"]


def test_a_shared_link_to_any_page_keeps_its_setup_across_page_switches(fresh):
    for page in PAGES:
        at = new_app({**SETUP, "page": page})
        at.run()
        for other in [p for p in PAGES if p != page][:2]:
            click_nav(at, other)
            assert_clean(at)
            assert link_of(at) == {**SETUP, "page": other}, (page, other)
        state = at.session_state["_lab_state"]
        assert (state.dataset, state.model, state.forget_class, state.alpha, state.lam) == (
            "shapes", "resnet18_narrow", 3, 40.0, 1.5)


# ---------------------------------------------------------------------------------------------
# A random walk


def _act(at, rng: random.Random, history: list[tuple[str, dict]]) -> str:
    """One user action; returns what was done (for the failure message)."""
    page = link_of(at)["page"]
    actions = ["page", "page", "back", "class", "dataset", "method", "alpha", "alpha", "lambda"]
    action = rng.choice(actions)
    if action == "back" and len(history) >= 2:
        history.pop()  # the current page
        previous_page, previous_query = history[-1]
        at.query_params.clear()
        at.query_params.update({k: v for k, v in previous_query.items() if k != "page"})  # the path names it
        at.switch_page(f"app_pages/{previous_page}.py").run()
        return f"back to {previous_page}"
    keys = {w.key for w in (*at.selectbox, *at.select_slider, *at.slider)}
    wanted = {"class": "setup_forget_class", "dataset": "setup_dataset", "method": "setup_method",
              "alpha": "alpha", "lambda": "lam"}.get(action)
    if action in ("page", "back") or wanted not in keys:  # (a page without that control: go elsewhere)
        others = [p for p in PAGES if p != page]
        target = "unlearn" if action in ("alpha", "lambda") and page != "unlearn" else rng.choice(others)
        click_nav(at, target)
        return f"page {target}"
    if action == "class":
        box = at.selectbox(key="setup_forget_class")
        value = rng.choice([o for o in range(len(box.options)) if o != box.value])
        box.set_value(value).run()
        return f"class {value}"
    if action == "dataset":
        box = at.selectbox(key="setup_dataset")
        value = "digits" if box.value == "shapes" else "shapes"
        box.set_value(value).run()
        return f"dataset {value}"
    if action == "method":
        box = at.selectbox(key="setup_method")
        value = "lfssd" if box.value == "ssd" else "ssd"
        box.set_value(value).run()
        return f"method {value}"
    slider = at.select_slider(key="alpha") if action == "alpha" else at.slider(key="lam")
    if action == "alpha":
        value = rng.choice([o for o in (1.0, 3.0, 10.0, 20.0, 50.0) if str(o) != str(slider.value)])
    else:
        value = rng.choice([v for v in (0.5, 1.0, 2.0) if v != slider.value])
    slider.set_value(value).run()
    return f"{action} {value}"


def test_a_random_walk_always_shows_what_a_fresh_session_shows_for_its_url():
    with both_cores():
        _random_walk()


def _random_walk() -> None:
    rng = random.Random(11)
    at = new_app()
    at.run()
    history = [("unlearn", link_of(at))]
    done = []
    fresh_views: dict[tuple, dict] = {}  # a fresh session's view per URL (it depends on the URL alone)
    for step in range(40):
        done.append(_act(at, rng, history))
        assert_clean(at)
        query = link_of(at)
        if not done[-1].startswith("back"):
            history.append((query.get("page", "unlearn"), query))
        url = tuple(sorted(query.items()))
        if url not in fresh_views:
            twin = new_app(query)
            twin.run()
            assert_clean(twin)
            assert link_of(twin) == query, done
            fresh_views[url] = snapshot(twin)
        assert snapshot(at) == fresh_views[url], (step, done)
    assert len(fresh_views) >= 15  # the walk visits many different URLs, not a few over and over


# ---------------------------------------------------------------------------------------------
# A dataset brings its own model; training waits for the user


def test_choosing_a_dataset_picks_its_shipped_model():
    at = new_app()
    at.run()
    at.selectbox(key="setup_dataset").set_value("shapes").run()
    assert_clean(at)
    assert at.selectbox(key="setup_model").value == "resnet18_narrow"
    assert any("shipped checkpoint, test accuracy 97.9%" in c.value for c in at.caption)
    assert not any("No trained" in c.value for c in at.sidebar.caption)
    at.selectbox(key="setup_dataset").set_value("digits").run()
    assert at.selectbox(key="setup_model").value == "smallcnn"


def test_a_model_without_a_checkpoint_is_trained_only_after_the_user_confirms(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))  # nothing trained here yet
    at = new_app({"seed": "3"})  # the shipped digits checkpoint is for seed 0
    at.run()
    assert_clean(at)
    assert not at.metric and not list(tmp_path.rglob("*.safetensors"))  # nothing trained, nothing shown
    (prompt,) = [i.value for i in at.info if "no trained" in i.value]
    assert "Training it here takes about" in prompt and "epochs on 1,437 images" in prompt
    assert any("No trained smallcnn for digits yet" in c.value for c in at.sidebar.caption)
    at.button(key="train_confirm").click().run()
    assert_clean(at)
    assert metric_values(at)["Dampened"] != "0" and list(tmp_path.rglob("*.safetensors"))
    # right after training, nothing on screen still describes the untrained state (#26.9): no prompt, no button,
    # no sidebar note; the toast says it is ready
    assert not any("No trained" in c.value for c in at.sidebar.caption)
    assert not any("no trained" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "train_confirm"]
    assert any("Ready: smallcnn trained just now" in t.value for t in at.toast), [t.value for t in at.toast]
