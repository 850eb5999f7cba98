"""The figure and view registries (#22): a figure added by registration shows in its own tab on the
Unlearn page, in the HTML report and in the images export; the Lesson uses the page's figure ids."""

from __future__ import annotations

import json
import re

import pytest
from apptest_helpers import ROOT, assert_clean, new_app

from ssd_core.data import ForgetRequest

TITLE = "Forget images per class"


def readme_view() -> str:
    block = (ROOT / "README.md").read_text().split("<!-- example: my_view.py -->", 1)[1]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The README's view example, loaded as the dashboard loads plug-ins (UNLEARNING_LAB_PLUGINS)."""
    from ui.startup import load_plugins
    from ui.views import FIGURES, VIEWS

    assert 8 <= len([line for line in readme_view().splitlines() if line.strip()]) <= 25
    path = tmp_path_factory.mktemp("plugin") / "my_view.py"
    path.write_text(readme_view())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("UNLEARNING_LAB_PLUGINS", str(path))
        load_plugins.clear()
        assert load_plugins() == ()
    yield
    FIGURES.pop("forget-counts")
    VIEWS.pop("forget-set")
    load_plugins.clear()


def test_a_registered_view_renders_on_the_page_and_its_link_opens_it(registered):
    at = new_app({"forget": "class:3", "alpha": "10", "view": "forget-set"}).run()
    assert_clean(at)
    assert at.segmented_control(key="view").value == "forget-set"
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
    from ui.views import FIGURES
    from unlearning_lab.lesson import LESSON_FIGURES, STEPS

    for step in STEPS:
        assert step.figure in FIGURES or step.figure in LESSON_FIGURES, step.key
    assert {s.figure for s in STEPS} & set(FIGURES) >= {"per-class-accuracy", "importance-scatter", "weights"}
