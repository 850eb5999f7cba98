"""The figure and view registries (#22): a figure added by registration shows in its own tab on the
Unlearn page, in the HTML report and in the images export; the Lesson uses the page's figure ids."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
from apptest_helpers import assert_clean, new_app

from ssd_core.data import ForgetRequest

TITLE = "Forget images per class"


def forget_counts(p, live, options) -> go.Figure:
    """A 20-line figure: how many training images of each class the request forgets."""
    counts = p.split.forget_train.y.bincount(minlength=p.dataset.num_classes).tolist()
    fig = go.Figure(go.Bar(x=p.dataset.classes, y=counts, marker_color="#d55e00"))
    fig.update_layout(title=f"{TITLE} (α = {live.alpha:g})", xaxis_title="class", yaxis_title="forget images")
    return fig


@pytest.fixture
def registered():
    from ui.views import FIGURES, VIEWS, register_figure, register_view

    register_figure("forget-counts", TITLE, "How many training images of each class the request asks to forget.",
                    forget_counts)
    register_view("counts", "Forget set", ":material/numbers:", figures=("forget-counts",))
    yield
    FIGURES.pop("forget-counts")
    VIEWS.pop("counts")


def test_a_registered_view_renders_on_the_page_and_its_link_opens_it(registered):
    at = new_app({"forget": "class:3", "alpha": "10", "view": "counts"}).run()
    assert_clean(at)
    assert at.segmented_control(key="view").value == "counts"
    titles = [json.loads(e.proto.spec)["layout"]["title"]["text"] for e in at.get("plotly_chart")]
    assert f"{TITLE} (α = 10)" in titles, titles
    assert any("the request asks to forget" in m.value for m in at.markdown)  # its explanation


def test_a_registered_figure_is_exported(registered):
    from ui import export_panel, resources
    from ui.state import RunSetup
    from ui.views import ViewOptions, all_figures

    prepared = resources.prepare(RunSetup(request=ForgetRequest("class", 3)))
    options = ViewOptions(ratio_layer=prepared.default_layer(), weight_layer=prepared.default_layer())
    live = export_panel._fresh_live(prepared, 10.0, 1.0)
    figures = all_figures(prepared, live, options)
    assert "forget-counts" in figures and len(figures) == 12
    bars = figures["forget-counts"].data[0].y
    assert bars[3] == len(prepared.split.forget_train) and sum(bars) == bars[3]  # only class 3 is forgotten
    html = export_panel._html(prepared, 10.0, 1.0, options, "stem")
    assert html.count("Plotly.newPlot") == 12 and TITLE in html


def test_a_view_needs_figures_that_exist():
    from ui.views import register_view

    with pytest.raises(ValueError, match="unknown: \\['nope'\\]"):
        register_view("broken", "Broken", ":material/error:", figures=("nope",))


def test_the_lesson_names_figures_by_the_page_ids():
    from ui.lesson import LESSON_FIGURES, STEPS
    from ui.views import FIGURES

    for step in STEPS:
        assert step.figure in FIGURES or step.figure in LESSON_FIGURES, step.key
    assert {s.figure for s in STEPS} & set(FIGURES) >= {"per-class-accuracy", "importance-scatter", "weights"}
