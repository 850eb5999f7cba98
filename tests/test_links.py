"""Shareable links: the pure parse/serialise functions, and links between two AppTest sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apptest_helpers import link_of, shown_page, shown_text

from ui.links import (
    LinkChoices,
    LinkState,
    check_forget,
    format_indices,
    parse_forget,
    parse_query,
    to_query,
)

CHOICES = LinkChoices(
    pages=("unlearn", "sweep", "about"),
    datasets=("digits", "shapes"),
    models=("smallcnn", "vit_tiny"),
    methods=("ssd", "lfssd"),
    alpha_range=(0.1, 100.0),
    lambda_range=(0.01, 5.0),
)


# ---------------------------------------------------------------------------------------------
# Pure functions


def test_state_round_trips_through_the_query():
    state = LinkState(page="sweep", dataset="shapes", model="vit_tiny", forget_kind="class", forget_value=3,
                      method="lfssd", alpha=30.0, lam=0.5, seed=7)
    query = to_query(state)
    assert query == {"page": "sweep", "dataset": "shapes", "model": "vit_tiny", "forget": "class:3",
                     "method": "lfssd", "alpha": "30", "lambda": "0.5", "seed": "7"}
    parsed = parse_query(query, CHOICES)
    assert parsed.warnings == []
    assert parsed.state == state


@pytest.mark.parametrize("kind, value, text", [
    ("class", 0, "class:0"),
    ("subclass", "rocket", "subclass:rocket"),
    ("random", 50, "random:50"),
    ("indices", (0, 1, 2, 3, 9, 15, 16), "indices:0-3,9,15-16"),
])
def test_every_forget_kind_round_trips(kind, value, text):
    query = to_query(LinkState(forget_kind=kind, forget_value=value))
    assert query == {"forget": text}
    assert parse_forget(text) == (kind, value)
    assert parse_query(query, CHOICES).state == LinkState(forget_kind=kind, forget_value=value)


def test_defaults_are_left_out_and_a_bare_number_is_a_class():
    assert to_query(LinkState(alpha=0.15, lam=1.0, seed=0)) == {"alpha": "0.15", "lambda": "1"}
    assert parse_forget(" 4 ") == ("class", 4)
    assert format_indices([5, 3, 4, 4, 10]) == "3-5,10"
    assert parse_query({}, CHOICES).state == LinkState()


def test_repeated_parameter_takes_the_last_value_and_unknown_ones_are_ignored():
    parsed = parse_query({"alpha": ["3", "20"], "embed": "true", "utm_source": "mail"}, CHOICES)
    assert parsed.state == LinkState(alpha=20.0)
    assert parsed.warnings == []


@pytest.mark.parametrize("params, warning", [
    ({"dataset": "imagenet"},
     "The link's dataset 'imagenet' is not an available dataset here (choose from digits, shapes); using the default dataset instead."),
    ({"model": "gpt"},
     "The link's model 'gpt' is not an available model here (choose from smallcnn, vit_tiny); using the default model instead."),
    ({"method": "retrain"},
     "The link's method 'retrain' is not a live method here (choose from ssd, lfssd); using the default method instead."),
    ({"page": "admin"},
     "The link's page 'admin' is not a page here (choose from unlearn, sweep, about); using the default page instead."),
    ({"alpha": "0"}, "The link's alpha '0' must be a positive number or auto; using the automatic α instead."),
    ({"alpha": "-3"}, "The link's alpha '-3' must be a positive number or auto; using the automatic α instead."),
    ({"alpha": "nan"}, "The link's alpha 'nan' must be a positive number or auto; using the automatic α instead."),
    ({"alpha": "1e9"}, "The link's alpha 1e9 is outside the slider's range 0.1 to 100; using the automatic α instead."),
    ({"lambda": "-0.5"}, "The link's lambda '-0.5' must be a number of at least 0; using λ = 1 instead."),
    ({"lambda": "abc"}, "The link's lambda 'abc' must be a number of at least 0; using λ = 1 instead."),
    ({"lambda": "9"}, "The link's lambda 9 is outside the slider's range 0.01 to 5; using λ = 1 instead."),
    ({"seed": "-1"}, "The link's seed '-1' must be a whole number from 0 to 2147483647; using seed 0 instead."),
    ({"forget": "class:x"}, "The link's forget 'class:x' must be a class index, e.g. class:3; forgetting the default class instead."),
    ({"forget": "all:everything"},
     "The link's forget 'all:everything' must start with one of class:, subclass:, random:, indices:; forgetting the default class "
     "instead."),
    ({"forget": "random:0"},
     "The link's forget 'random:0' must be a number of samples of at least 1, e.g. random:50; forgetting the default class instead."),
    ({"forget": "indices:9-3"},
     "The link's forget 'indices:9-3' must list training-set indices, e.g. indices:0-9,15; forgetting the default class instead."),
    ({"forget": "indices:"},
     "The link's forget 'indices:' must list training-set indices, e.g. indices:0-9,15; forgetting the default class instead."),
])
def test_each_bad_value_is_named_and_dropped(params, warning):
    parsed = parse_query({**params, "dataset": params.get("dataset", "shapes")}, CHOICES)
    assert parsed.warnings == [warning]
    expected_dataset = None if "dataset" in params else "shapes"
    assert parsed.state == LinkState(dataset=expected_dataset)  # the bad one falls back, the rest is kept


def test_garbage_is_quoted_short_and_printable():
    parsed = parse_query({"dataset": "x" * 500 + "\x00\n<script>"}, CHOICES)
    (warning,) = parsed.warnings
    assert "\x00" not in warning and "\n" not in warning and len(warning) < 200
    assert "'xxxxxxxxx" in warning and "…'" in warning


def test_forget_request_is_checked_against_the_dataset():
    def check(kind, value):
        return check_forget(LinkState(alpha=5.0, forget_kind=kind, forget_value=value), num_classes=10,
                            n_train=100, subclasses=None)

    assert check("class", 9).warnings == [] and check("class", 9).state.forget_value == 9
    out = check("class", 10)
    assert out.warnings == ["The link's forget 'class:10' does not fit: class 10 is out of range: the dataset has "
                            "classes 0 to 9; forgetting the default class instead."]
    assert out.state == LinkState(alpha=5.0)  # only the forget request is dropped
    assert check("random", 100).warnings == ["The link's forget 'random:100' does not fit: 100 samples is not between "
                                             "1 and 99 (the training set has 100); forgetting the default class instead."]
    assert check("indices", tuple(range(100))).warnings == [
        "The link's forget 'indices:0-99' does not fit: it covers every training sample, so nothing would remain; "
        "forgetting the default class instead."]
    assert check("indices", (5, 120)).warnings == [
        "The link's forget 'indices:5,120' does not fit: sample index 120 is out of range: the training set has "
        "indices 0 to 99; forgetting the default class instead."]
    assert check("subclass", "rocket").warnings == [
        "The link's forget 'subclass:rocket' does not fit: this dataset has no sub-classes; forgetting the default class instead."]
    ok = check_forget(LinkState(forget_kind="subclass", forget_value="rocket"), num_classes=20, n_train=100,
                      subclasses=["apple", "rocket"])
    assert ok.warnings == []


# ---------------------------------------------------------------------------------------------
# In the app (AppTest)

TIMEOUT = 120


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_link_from_one_session_restores_its_settings_in_another():
    first = _app()
    first.run()
    assert link_of(first) == {"page": "unlearn", "dataset": "digits", "model": "smallcnn", "forget": "class:3",
                              "method": "ssd", "alpha": "auto", "lambda": "1"}
    first.selectbox(key="setup_forget_class").set_value(5).run()
    first.select_slider(key="alpha").set_value(50.0)
    first.slider(key="lam").set_value(0.5).run()  # a slider move reruns the fragment only: the URL follows
    assert not first.exception and not first.error
    link = link_of(first)
    assert link == {"page": "unlearn", "dataset": "digits", "model": "smallcnn", "forget": "class:5",
                    "method": "ssd", "alpha": "50", "lambda": "0.5"}

    second = _app()
    second.query_params.update(link)
    second.run()
    assert not second.exception and not second.error and not second.warning
    assert second.selectbox(key="setup_forget_class").value == 5
    assert second.select_slider(key="alpha").value == 50.0
    assert second.slider(key="lam").value == 0.5
    assert _metrics(second) == _metrics(first)  # the same numbers on the other side of the link
    assert link_of(second) == link

    # the open page is part of the link: a link to the sweep page opens it, with the same settings
    first.switch_page("app_pages/sweep.py").run()
    sweep_title = [t.value for t in first.title]
    third = _app()
    third.query_params.update({**link, "page": "sweep"})
    third.run()
    assert not third.exception and not third.error and not third.warning
    assert [t.value for t in third.title] == sweep_title != ["Selective Synaptic Dampening, live"]
    assert third.selectbox(key="setup_forget_class").value == 5 and third.slider(key="lam").value == 0.5
    assert shown_page(third) == "sweep" and link_of(third) == {**link, "page": "sweep"}  # the address: /sweep?...


def test_a_tampered_link_warns_for_each_bad_parameter_and_falls_back():
    at = _app()
    at.query_params.update({"dataset": "digits", "forget": "class:42", "alpha": "-1", "lambda": "-2",
                            "method": "ssd", "model": "no_such_model", "page": "nowhere"})
    at.run()
    assert not at.exception and not at.error
    pages = ", ".join(sorted(p.stem for p in (ROOT / "app_pages").glob("*.py")))
    assert "sweep" in pages and "unlearn" in pages
    assert [shown_text(w.value) for w in at.warning] == [
        f"The link's page 'nowhere' is not a page here (choose from {pages}); opening this page instead.",
        "The link's model 'no_such_model' is not an available model here (choose from smallcnn, resnet18, "
        "resnet18_narrow, resnet18_cifar100, vit_tiny); using the default model instead.",
        "The link's alpha '-1' must be a positive number or auto; using the automatic α instead.",
        "The link's lambda '-2' must be a number of at least 0; using λ = 1 instead.",
        "The link's forget 'class:42' does not fit: class 42 is out of range: the dataset has classes 0 to 9; "
        "forgetting the default class instead.",
    ]
    # defaults everywhere, and a complete result
    assert at.selectbox(key="setup_model").value == "smallcnn"
    assert at.selectbox(key="setup_forget_class").value == 3
    assert at.toggle(key="alpha_auto").value and at.slider(key="lam").value == 1.0
    assert int(_metrics(at)["Dampened"].replace(",", "")) > 0
    # the URL now describes what is on screen; the warnings were shown once
    assert at.query_params["forget"] == "class:3" and at.query_params["alpha"] == "auto"
    at.select_slider(key="alpha").set_value(50.0).run()
    assert not at.warning and at.query_params["alpha"] == "50"


def test_a_typed_page_address_redirects_to_a_link_into_the_root():
    from ui.page_paths import page_names, redirect_target

    pages = page_names()
    assert redirect_target("/lesson", "alpha=40&page=sweep", pages) == "/?page=lesson&alpha=40"  # the path wins
    assert redirect_target("/unlearn", "alpha=40", pages) == "/?alpha=40"  # the default page is the root itself
    assert redirect_target("/", "alpha=40", pages) is None
    assert redirect_target("/_stcore/health", "", pages) is None
    assert redirect_target("/nosuchpage", "", pages) is None


def test_a_link_to_another_page_opens_it_with_the_whole_setup_in_one_address():
    """A short link into the root (/?page=sweep&forget=class:4) opens the page, and the address names
    the page by its path and carries the whole setup (the defaults it left out too)."""
    at = _app()
    at.query_params.update({"page": "sweep", "dataset": "digits", "forget": "class:4"})
    at.run()
    assert not at.exception and not at.error
    assert link_of(at) == {"page": "sweep", "dataset": "digits", "model": "smallcnn", "forget": "class:4",
                           "method": "ssd", "alpha": "auto", "lambda": "1"}
