"""The Landscape page: grids on the slider's values, exact reuse of identical models, heatmaps that
draw the sweep's numbers, a frontier whose Pareto points are non-dominated, and settings that
travel to the live sliders."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ssd_core.metrics import Evaluator
from ssd_core.sweep import SweepPoint, SweepResult, mark_pareto, sweep
from ui import landscape
from ui.state import ALPHA_VALUES, K_ALPHA, K_LAMBDA, RunSetup


@pytest.fixture(scope="module")
def prepared():
    from ssd_core.data import ForgetRequest
    from ui import resources

    return resources.prepare(RunSetup(request=ForgetRequest("class", 0)))  # digits / smallcnn / class 0 / SSD


def dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """(retain, forget) p is dominated by q: q keeps at least as much and forgets at least as much, one strictly."""
    return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])


def values(data) -> list:
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        if "shape" in data:
            array = array.reshape([int(s) for s in str(data["shape"]).split(",")])
        return array.tolist()
    return list(data)


def test_grids_use_slider_values():
    alphas = landscape.alpha_grid(1.0, 100.0, 10)
    assert len(alphas) == 10 and set(alphas) <= set(ALPHA_VALUES) and alphas == sorted(alphas)
    assert alphas[0] == 1.0 and alphas[-1] == 100.0 and 10.0 in alphas  # the paper's alpha is on the grid
    assert 5.0 in landscape.alpha_grid(1.0, 100.0, 4, anchor=5.0)
    assert landscape.alpha_grid(0.1, 100.0, 50) == list(ALPHA_VALUES)
    lams = landscape.lambda_grid(0.1, 5.0, 6)
    assert len(lams) == 6 and lams[0] == 0.1 and lams[-1] == 5.0 and 1.0 in lams
    assert all(round(v, 2) == v for v in lams) and lams == sorted(lams)
    assert landscape.lambda_grid(0.5, 0.5, 4) == [0.5]
    assert landscape.default_eval_bound(1437) == 500 and landscape.default_eval_bound(50_000) == 250


def test_landscape_equals_the_library_sweep_and_reuses_identical_models(prepared):
    alphas, lams = [3.0, 10.0, 70.0, 100.0], [0.5, 1.0, 5.0]
    result, hits = landscape.run_landscape(prepared, alphas, lams)
    reference = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                      alphas, lams, device=prepared.device)
    assert result.complete and len(result.points) == 12
    assert [vars(p) for p in result.points] == [vars(p) for p in reference.points]  # exact, Pareto flags too
    assert hits >= 2  # alpha 3 < lambda 5 == alpha 10 < lambda ... and nothing selected at 100 for every lambda
    for metric in ("forget_test_acc", "retain_test_acc", "mia"):
        assert result.grid(metric) == reference.grid(metric)


def test_the_alpha_sweep_on_digits_reads_every_test_image_and_equals_a_full_evaluation(prepared):
    """On small data the sweep along α reads every test image: each row is that setting's full evaluation."""
    from ssd_core.metrics import evaluate
    from ui import resources

    rows = landscape.alpha_sweep(prepared, 1.0)
    assert [r["alpha"] for r in rows] == list(ALPHA_VALUES)
    assert landscape.alpha_sweep_images(prepared) == "every test image"
    for row in rows[::4]:
        model, report = resources.engine(prepared).at(row["alpha"], 1.0)
        full = evaluate(model, prepared.split, "cpu")
        assert (row["forget_acc"], row["retain_acc"]) == (full.forget_test_acc, full.retain_test_acc), row["alpha"]
        assert row["fraction_dampened"] == report.fraction_selected


def test_time_budget_keeps_finished_columns(prepared):
    columns = []
    result, _ = landscape.run_landscape(prepared, [10.0, 30.0], [0.5, 1.0, 2.0], time_budget_s=0.0,
                                        on_column=columns.append)
    assert not result.complete and len(result.points) <= 1
    full, _ = landscape.run_landscape(prepared, [10.0, 30.0, 50.0], [0.5, 1.0], on_column=columns.append)
    assert full.complete and [len(c.points) for c in columns[-3:]] == [2, 4, 6]
    assert [(p.alpha, p.lam) for p in columns[-2].points] == [(10.0, 0.5), (30.0, 0.5), (10.0, 1.0), (30.0, 1.0)]


def test_the_sweep_runs_by_alpha_column_and_returns_the_grid_order_with_the_numbers_of_single_settings(prepared):
    """Computed one α column at a time (the settings of a column share the first changed layer, so the prefix
    shortcut runs the layers before it once per column), the points come back in the grid's order (λ rows,
    α within a row), each with the numbers of that setting evaluated on its own."""
    alphas, lams = [3.0, 30.0], [0.5, 2.0]
    computed = []  # the progress messages, in the order the settings are computed
    result = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                   alphas, lams, progress=lambda fraction, message: computed.append(message))
    assert computed == ["alpha 3, lambda 0.5", "alpha 3, lambda 2", "alpha 30, lambda 0.5", "alpha 30, lambda 2"]
    assert [(p.alpha, p.lam) for p in result.points] == [(3.0, 0.5), (30.0, 0.5), (3.0, 2.0), (30.0, 2.0)]
    for point in result.points:
        alone = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                      [point.alpha], [point.lam]).points[0]
        assert (alone.forget_test_acc, alone.retain_test_acc, alone.mia, alone.selected) == \
            (point.forget_test_acc, point.retain_test_acc, point.mia, point.selected)


def test_a_running_sweep_previews_its_finished_columns(prepared):
    """While the sweep runs, the page shows the forget heatmap of the α columns done so far; the columns
    still to come are blank, and the values are the finished sweep's."""
    columns = []
    alphas, lams = [10.0, 30.0], [0.5, 1.0, 2.0]
    full, _ = landscape.run_landscape(prepared, alphas, lams, on_column=columns.append)
    first = landscape.preview_figure(columns[0]).to_plotly_json()
    cells = first["data"][0]["customdata"]  # [α, λ, the metric's value] per cell
    assert [[cell[2] for cell in row] for row in cells] == [[p.forget_test_acc, None]
                                                             for p in full.points if p.alpha == 10.0]  # α 30: not yet
    assert len(first["data"]) == 1 and "so far" in first["layout"]["title"]["text"]  # no Pareto rings yet


def test_frontier_pareto_points_are_non_dominated(prepared):
    result, _ = landscape.run_landscape(prepared, [1.0, 2.0, 5.0, 10.0, 30.0, 50.0], [0.1, 1.0, 5.0])
    fig = landscape.frontier_figure(result, prepared, current=(10.0, 1.0))
    settings, front = fig.data[0], fig.data[1]
    assert front.name.startswith("Pareto") and len(front.x) == len(result.pareto_points()) > 0
    every = list(zip(settings.x, settings.y)) + list(zip(front.x, front.y))
    assert len(every) == len(result.points)
    for p in zip(front.x, front.y):
        assert not any(dominated(p, q) for q in every), p
    for p in zip(settings.x, settings.y):
        assert any(dominated(p, q) for q in every), p
    # hover and selection carry the setting
    for (a, lam, *_), x, y in zip(front.customdata, front.x, front.y):
        point = next(q for q in result.points if (q.alpha, q.lam) == (a, lam))
        assert (landscape.retain_value(point), landscape.forget_value(point)) == (x, y) and point.pareto


def test_a_selection_becomes_a_setting():
    def point(alpha, lam, retain, forget, pareto):
        return SweepPoint(alpha, lam, forget, retain, None, None, 0.0, 0, 0.0, pareto)

    points = [point(10.0, 1.0, 0.99, 0.0, True), point(3.0, 1.0, 0.95, 0.0, False), point(30.0, 0.5, 0.99, 0.2, False)]
    result = SweepResult([3.0, 10.0, 30.0], [0.5, 1.0], points, 0.0)
    click = {"points": [{"customdata": [3.0, 1.0, 0.0, 0.1]}]}
    assert landscape.pick_from_selection(click, result) is points[1]
    box = {"points": [{"customdata": [3.0, 1.0]}, {"customdata": [10.0, 1.0]}, {"customdata": [30.0, 0.5]}]}
    assert landscape.pick_from_selection(box, result) is points[0]  # the Pareto one
    assert landscape.pick_from_selection({"points": [{"x": 1}]}, result) is None
    assert landscape.pick_from_selection(None, result) is None


def _landscape_page(alphas: tuple[float, float, int], lams: tuple[float, float, int]):
    """A new session on the digits class-0 Landscape page that swept the grid (α from, to, values; λ the same)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update({"forget": "class:0"})
    at.run()
    at.switch_page("app_pages/sweep.py").run()
    assert not at.exception, [e.message for e in at.exception]
    for (low, high, n), name in ((alphas, "alpha"), (lams, "lam")):
        at.select_slider(key=f"ls_{name}_lo").set_value(low)
        at.select_slider(key=f"ls_{name}_hi").set_value(high)
        at.slider(key=f"ls_n_{name}").set_value(n)
    at.button(key="FormSubmitter:landscape_form-Compute landscape").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_landscape_page_draws_the_sweep_and_sends_settings_to_the_sliders(prepared):
    at = _landscape_page((3.0, 100.0, 4), (0.5, 2.0, 2))

    alphas = landscape.alpha_grid(3.0, 100.0, 4)
    lams = [0.5, 2.0]
    bound = landscape.default_eval_bound(len(prepared.dataset.train_y))  # the page's default: retain-train sampled
    evaluator = Evaluator(prepared.split, prepared.device, max_per_subset=bound, seed=prepared.setup.seed)
    reference = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                      alphas, lams, device=prepared.device, evaluator=evaluator)
    unbounded = sweep(prepared.model, prepared.importances.full, prepared.importances.forget, prepared.split,
                      alphas, lams, device=prepared.device)
    charts = {json.loads(e.proto.spec)["layout"]["title"]["text"].split("<br>")[0].split("  ")[0]: json.loads(e.proto.spec)
              for e in at.get("plotly_chart")}
    for title, metric in (("Forget accuracy (test)", "forget_test_acc"), ("Retain accuracy (test)", "retain_test_acc"),
                          ("MIA", "mia")):
        heat = charts[title]["data"][0]
        assert heat["type"] == "heatmap"
        assert values(heat["x"]) == [f"{a:g}" for a in alphas] and values(heat["y"]) == [f"{v:g}" for v in lams]
        shown = [[cell[2] for cell in row] for row in heat["customdata"]]
        assert shown == reference.grid(metric), title  # the single runs' numbers, exactly
        if metric != "mia":  # on digits only retain-train (MIA's members) is sampled: accuracies are whole-subset
            assert shown == unbounded.grid(metric), title
        goodness = values(heat["z"])  # one colour rule: the colour is how good a cell is (1 best)
        flip = metric != "retain_test_acc"
        assert goodness == [[None if v is None else (1 - v if flip else v) for v in row] for row in shown], title
        assert heat["colorbar"]["title"]["text"] == "↑ better"

    frontier = charts["Trade-off frontier"]["data"]
    every = [(x, y) for trace in frontier[:2] for x, y in zip(values(trace["x"]), values(trace["y"]))]
    assert len(every) == len(reference.points)
    front = list(zip(values(frontier[1]["x"]), values(frontier[1]["y"])))
    assert front and all(not any(dominated(p, q) for q in every) for p in front)
    mark_pareto(reference.points)
    assert len(front) == len(reference.pareto_points())

    # a Pareto setting goes to the live sliders and stays there on the Unlearn page
    pick = at.selectbox(key="ls_pick").value
    at.button(key="ls_use_pareto").click().run()
    s = at.session_state["_lab_state"]
    assert (s.alpha, s.lam) == pick
    assert any(f"α = {pick[0]:g}, λ = {pick[1]:g}" in s.value for s in at.success)
    at.switch_page("app_pages/unlearn.py").run()
    assert not at.exception
    assert at.select_slider(key=K_ALPHA).value == pick[0] and at.slider(key=K_LAMBDA).value == pick[1]

    # suggest alpha: the gentlest slider alpha reaching 5% forget accuracy at the current lambda
    at.switch_page("app_pages/sweep.py").run()
    at.number_input(key="ls_target").set_value(5.0)
    at.button(key="ls_suggest").click().run()
    assert not at.exception
    message = next(s.value for s in at.success if s.value.startswith("Gentlest α"))
    at.button(key="ls_use_suggestion").click().run()
    chosen = at.session_state["_lab_state"].alpha
    from ssd_core.dampening import dampen
    from ssd_core.metrics import evaluate

    lam = at.session_state["_lab_state"].lam
    forget_at = lambda a: evaluate(dampen(prepared.model, prepared.importances.full, prepared.importances.forget, a, lam,
                                          with_statistics=False)[0], prepared.split, with_mia=False).forget_test_acc
    assert forget_at(chosen) <= 0.05  # the suggested value reaches the target
    assert chosen == message_alpha(message)  # exactly the bisection's alpha (the slider shows it too)
    at.switch_page("app_pages/unlearn.py").run()
    assert at.select_slider(key=K_ALPHA).value == chosen


def message_alpha(message: str) -> float:
    """The bisection's alpha in the suggestion message ('... **α = 33** ...')."""
    return float(message.split("**α = ")[1].split("**")[0])


def test_the_landscape_marks_the_alpha_the_unlearn_page_uses():
    """With automatic α on (the default), the α-sweep's "current α" is automatic α, not the slider's 10."""
    import re

    from apptest_helpers import shown_text
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update({"forget": "class:3"})
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    captions = [shown_text(c.value) for c in at.caption]
    auto = next(re.search(r"Auto: α = ([0-9]+(?:\.[0-9]+)?)", c) for c in captions if "Auto: α = " in c).group(1)
    assert float(auto) != 10.0
    at.switch_page("app_pages/sweep.py").run()
    assert not at.exception, [e.message for e in at.exception]
    names = [trace.get("name", "") for e in at.get("plotly_chart") for trace in json.loads(e.proto.spec)["data"]]
    assert f"current α = {auto}" in names, names


def test_a_second_session_asking_for_the_same_grid_gets_the_first_sweep_at_once_and_is_told(monkeypatch):
    """A classroom: the first session sweeps a grid; the next session asking for exactly that grid gets the same
    heatmaps without a sweep, and the caption says they were kept from the earlier sweep on this server."""
    sweeps = []
    real = landscape.run_landscape
    monkeypatch.setattr(landscape, "run_landscape", lambda *args, **kwargs: sweeps.append(1) or real(*args, **kwargs))

    def session() -> tuple[list, str]:
        at = _landscape_page((5.0, 50.0, 3), (0.5, 2.0, 2))
        heatmaps = [json.loads(e.proto.spec)["data"][0]["customdata"] for e in at.get("plotly_chart")
                    if json.loads(e.proto.spec)["data"][0].get("type") == "heatmap"]
        return heatmaps, next(c.value for c in at.caption if " settings in " in c.value)

    first, caption = session()
    assert sweeps == [1] and len(first) == 3 and "kept from" not in caption
    second, caption = session()
    assert sweeps == [1] and second == first
    assert "6 of 6 settings" in caption and "(kept from this grid's earlier sweep on this server)" in caption
