"""The dashboard under streamlit.testing (AppTest): defaults, sliders, views, sessions, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apptest_helpers import shown_text
from streamlit.testing.v1 import AppTest

from ssd_core.dampening import dampen
from ssd_core.data import ForgetRequest, load_dataset, make_split
from ssd_core.methods.ssd import ssd_importances
from ssd_core.metrics import evaluate
from ssd_core.models import get_spec
from ssd_core.train import load_or_train

TIMEOUT = 120


# These tests drive alpha by hand on class 0 (where alpha 10 forgets cleanly); the first screen's
# automatic alpha on class 3 is tested in test_app_guard.py.
MANUAL = {"forget": "class:0", "alpha": "10"}


def new_app() -> AppTest:
    """A new session opened on MANUAL (alpha by hand, class 0)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(MANUAL)
    return at


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def pct(text: str) -> float | None:
    return None if text == "n/a" else float(text.rstrip("%")) / 100


def count(text: str) -> int:
    return int(text.replace(",", ""))


def chart(at: AppTest, title_start: str) -> dict:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if spec["layout"]["title"]["text"].startswith(title_start):
            return spec
    titles = [json.loads(e.proto.spec)["layout"]["title"]["text"] for e in at.get("plotly_chart")]
    raise AssertionError(f"no chart titled {title_start!r}; have {titles}")


def values(data) -> list:
    """A plotly array from a figure's JSON: plain list, or a typed array {'dtype', 'bdata', 'shape'}."""
    if isinstance(data, dict) and "bdata" in data:
        import base64

        import numpy as np

        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        if "shape" in data:
            array = array.reshape([int(s) for s in str(data["shape"]).split(",")])
        return array.tolist()
    return list(data)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


_reference: dict = {}


def reference(target: int, alpha: float, lam: float):
    """ssd_core's own numbers for digits/smallcnn/SSD, computed without the dashboard."""
    key = (target, alpha, lam)
    if key not in _reference:
        dataset = load_dataset("digits")
        original = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model
        split = make_split(dataset, ForgetRequest("class", target))
        importances = ssd_importances(original, split, "fisher", 64, device="cpu")
        model, report = dampen(original, importances.full, importances.forget, alpha, lam)
        _reference[key] = (evaluate(original, split), evaluate(model, split), report)
    return _reference[key]


@pytest.fixture(scope="module")
def app() -> AppTest:
    at = new_app()
    at.run()
    return at


def test_default_page_shows_a_complete_result_matching_ssd_core(app):
    assert_clean(app)
    assert app.selectbox(key="setup_dataset").value == "digits"
    assert app.selectbox(key="setup_model").value == "smallcnn"
    assert app.selectbox(key="setup_forget_class").value == 0
    assert app.selectbox(key="setup_method").value == "ssd"
    alpha = get_spec("smallcnn").default_alpha
    assert app.select_slider(key="alpha").value == alpha and app.slider(key="lam").value == 1.0

    before, after, report = reference(0, alpha, 1.0)
    shown = metric_values(app)
    assert count(shown["Dampened"]) == report.total_selected
    assert pct(shown["Forget (test)"]) == pytest.approx(after.forget_test_acc, abs=5e-4)
    assert pct(shown["Retain (test)"]) == pytest.approx(after.retain_test_acc, abs=5e-4)
    assert pct(shown["Forget (train)"]) == pytest.approx(after.forget_train_acc, abs=5e-4)
    assert pct(shown["MIA"]) == pytest.approx(after.mia, abs=5e-4)

    per_class = chart(app, "Per-class test accuracy")
    bars = {trace["name"]: values(trace["y"]) for trace in per_class["data"]}
    assert bars["before"] == pytest.approx([100 * v for v in before.per_class_acc])
    assert bars["after"] == pytest.approx([100 * v for v in after.per_class_acc])
    confusion = chart(app, "Test confusion matrices")
    after_rates = values(confusion["data"][1]["z"])
    row0 = after.confusion[0]
    assert after_rates[0] == pytest.approx([100 * c / sum(row0) for c in row0])


def test_alpha_and_lambda_sliders_move_the_numbers(app):
    from ssd_core.importance import default_cache
    from ui import resources
    from ui.state import RunSetup

    at = app
    prepared = resources.peek_prepared(RunSetup(request=ForgetRequest("class", 0)))
    assert prepared is not None
    misses = default_cache().misses
    results = []
    for alpha in (10.0, 30.0, 100.0):
        at.select_slider(key="alpha").set_value(alpha).run()
        assert_clean(at)
        shown = metric_values(at)
        results.append((count(shown["Dampened"]), pct(shown["Forget (test)"])))
        assert count(shown["Dampened"]) == reference(0, alpha, 1.0)[2].total_selected
        assert values(chart(at, "Per-class test accuracy")["data"][1]["y"]) == pytest.approx(
            [100 * v for v in reference(0, alpha, 1.0)[1].per_class_acc])
    # slider moves reuse the prepared run: no importance recomputed, no new data or model
    assert resources.peek_prepared(RunSetup(request=ForgetRequest("class", 0))) is prepared
    assert default_cache().misses == misses
    dampened, forget = zip(*results)
    assert dampened[0] > dampened[1] > dampened[2], dampened  # higher alpha, fewer parameters
    assert forget[0] <= forget[1] <= forget[2], forget  # and never less of the forget class kept

    at.select_slider(key="alpha").set_value(10.0)
    at.slider(key="lam").set_value(0.1).run()
    assert_clean(at)
    shown = metric_values(at)
    assert count(shown["Dampened"]) == results[0][0]  # lambda does not change the selection
    assert pct(shown["Forget (train)"]) == pytest.approx(reference(0, 10.0, 0.1)[1].forget_train_acc, abs=5e-4)

    at.select_slider(key="alpha").set_value(70.0).run()
    at.button(key="paper_defaults").click().run()
    assert_clean(at)
    assert at.select_slider(key="alpha").value == get_spec("smallcnn").default_alpha
    assert at.slider(key="lam").value == 1.0


def test_every_view_and_page_renders(app):
    from ui.live import VIEWS

    at = app
    expected = {
        "accuracy": ["Accuracy and MIA", "Per-class test accuracy", "Test confusion matrices"],
        "importance": ["Importance ratio per layer", "Parameters selected per layer", "I_D vs I_f", "Importance ratios of"],
        "weights": ["features", "How much each filter"],
        "saliency": ["Saliency: attribution"],
        "signal": ["Per-sample loss"],
        "export": [],
    }
    at.select_slider(key="alpha").set_value(10.0).run()
    for name in VIEWS:
        at.segmented_control(key="view").set_value(name).run()
        assert_clean(at)
        titles = [json.loads(e.proto.spec)["layout"]["title"]["text"] for e in at.get("plotly_chart")]
        for start in expected[name]:
            assert any(t.startswith(start) for t in titles), (name, start, titles)
    labels = [b.label for b in at.get("download_button")]
    assert {"Metrics (CSV)", "Results (JSON)", "Model (safetensors)", "Report (HTML)"} <= set(labels)

    scatter = None
    at.segmented_control(key="view").set_value("importance").run()
    scatter = chart(at, "I_D vs I_f")
    line = scatter["data"][-1]
    assert values(line["y"])[0] / values(line["x"])[0] == pytest.approx(10.0)
    at.select_slider(key="alpha").set_value(100.0).run()
    line = chart(at, "I_D vs I_f")["data"][-1]
    assert values(line["y"])[0] / values(line["x"])[0] == pytest.approx(100.0)  # the alpha line moved

    at.segmented_control(key="view").set_value("saliency").run()
    at.segmented_control(key="opt_saliency_method").set_value("gradcam").run()
    assert_clean(at)
    assert chart(at, "Grad-CAM: attribution")

    at.switch_page("app_pages/sweep.py").run()
    assert_clean(at)
    sweep = chart(at, "Alpha sweep")
    assert len(values(sweep["data"][0]["x"])) == 19 and at.success
    at.switch_page("app_pages/about.py").run()
    assert_clean(at)
    assert any("Selective Synaptic Dampening" in t.value for t in at.title)


def test_two_sessions_are_isolated_and_the_cached_model_is_untouched():
    from ui import resources

    first, second = new_app(), new_app()
    first.run()
    dataset = load_dataset("digits")
    cached = resources.peek_original_model(dataset, "smallcnn", 0, torch.device("cpu"))
    assert cached is not None
    snapshot = {k: v.clone() for k, v in cached.model.state_dict().items()}

    first.select_slider(key="alpha").set_value(3.0).run()
    shown_first = metric_values(first)
    second.run()
    second.selectbox(key="setup_forget_class").set_value(5).run()
    second.select_slider(key="alpha").set_value(50.0)
    second.slider(key="lam").set_value(0.5).run()
    assert_clean(second)
    shown_second = metric_values(second)
    first.run()  # the first session reruns after the second moved its sliders
    assert_clean(first)
    assert metric_values(first) == shown_first
    assert count(shown_first["Dampened"]) == reference(0, 3.0, 1.0)[2].total_selected
    assert count(shown_second["Dampened"]) == reference(5, 50.0, 0.5)[2].total_selected
    assert pct(shown_second["Forget (test)"]) == pytest.approx(reference(5, 50.0, 0.5)[1].forget_test_acc, abs=5e-4)
    assert shown_first != shown_second

    fresh = load_or_train(dataset, "smallcnn", seed=0, device="cpu").model.state_dict()
    for key, value in cached.model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
        assert torch.equal(value, fresh[key]), key


def test_errors_show_one_sentence_and_keep_the_page_usable():
    at = new_app()
    at.run()
    at.radio(key="setup_forget_kind").set_value("indices").run()
    at.text_input(key="setup_forget_indices").input("1, x").run()
    assert not at.exception
    assert [shown_text(e.value) for e in at.error] == ["'x' is not a sample index; use numbers like 1,5,9 or 3-7."]
    assert at.selectbox(key="setup_dataset").value == "digits"  # the sidebar still works
    at.text_input(key="setup_forget_indices").input("0-9").run()
    assert_clean(at)
    assert count(metric_values(at)["Dampened"]) > 0

    if not torch.cuda.is_available():
        at.radio(key="setup_device").set_value("gpu").run()
        assert not at.exception
        assert len(at.error) == 1 and shown_text(at.error[0].value).startswith("CUDA was requested")
        assert "Traceback" not in at.error[0].value


def test_export_panel_renders_images_and_builds_reloadable_files(app):
    from ssd_core.checkpoints import ModelConfig, load_model
    from ui import export_panel, resources
    from ui.state import RunSetup
    from ui.views import ViewOptions
    from unlearning_lab import export

    at = app
    at.switch_page("app_pages/unlearn.py").run()
    at.select_slider(key="alpha").set_value(20.0)
    at.slider(key="lam").set_value(1.0)
    at.segmented_control(key="view").set_value("export").run()
    assert_clean(at)
    if export.find_browser() is not None:
        at.button(key="render_images").click().run()
        assert_clean(at)
        labels = [b.label for b in at.get("download_button")]
        assert "All figures, PNG (11 files, zip)" in labels and "All figures, SVG (11 files, zip)" in labels
        assert any(label == "Everything (zip)" for label in labels)
    else:
        assert any("Chrome or Chromium" in i.value for i in at.info)

    # the deferred downloads: HTML report and model files, built from the settings alone
    prepared = resources.prepare(RunSetup(request=ForgetRequest("class", 0)))
    options = ViewOptions(ratio_layer=prepared.default_layer(), weight_layer=prepared.default_layer())
    html = export_panel._html(prepared, 20.0, 1.0, options, "stem")
    assert html.count("Plotly.newPlot") == 11 and "Unlearning Lab report" in html
    files = export_panel._model_files(prepared, 20.0, 1.0, "stem")
    config = ModelConfig.from_dict(json.loads(files["stem.json"]))
    assert json.loads(files["stem.json"])["unlearning"]["alpha"] == 20.0
    reloaded = evaluate(load_model(files["stem.safetensors"], config), prepared.split)
    _, after, _ = reference(0, 20.0, 1.0)
    assert reloaded.per_class_acc == pytest.approx(after.per_class_acc)
    assert reloaded.mia == pytest.approx(after.mia)


def test_slider_neighbours_are_prefetched_with_the_numbers_a_move_would_compute(monkeypatch):
    """After a move, the rungs either side are evaluated in the background; a later move there
    shows exactly what computing it in the foreground gives."""
    import time

    from ui import resources
    from ui.state import RunSetup

    monkeypatch.setenv("UNLEARNING_LAB_PREFETCH", "1")
    at = new_app()
    at.run()
    at.select_slider(key="alpha").set_value(20.0).run()
    prepared = resources.peek_prepared(RunSetup(request=ForgetRequest("class", 0)))
    store = resources.resource_store()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(store.peek("live", (prepared.key, a, 1.0)) for a in (15.0, 30.0)):
        time.sleep(0.1)
    prefetched = store.peek("live", (prepared.key, 30.0, 1.0))
    assert prefetched is not None and store.peek("live", (prepared.key, 15.0, 1.0)) is not None
    _, after, report = reference(0, 30.0, 1.0)
    assert prefetched[1].per_class_acc == pytest.approx(after.per_class_acc)
    assert prefetched[1].mia == pytest.approx(after.mia)
    at.select_slider(key="alpha").set_value(30.0).run()
    assert count(metric_values(at)["Dampened"]) == report.total_selected
    assert pct(metric_values(at)["Forget (test)"]) == pytest.approx(after.forget_test_acc, abs=5e-4)


def test_the_neighbour_in_the_direction_of_the_last_move_is_prefetched_first(monkeypatch):
    """A user stepping down keeps stepping down: after 15 -> 10 the rung below (7) is evaluated before 15."""
    from ui import prefetch
    from ui.state import RunSetup

    submitted: list[list[tuple[float, float]]] = []

    class Recorder:
        def submit(self, prepared, settings):
            submitted.append(settings)

    class Store:
        def peek(self, namespace, key):
            return None  # nothing evaluated yet

    monkeypatch.setenv("UNLEARNING_LAB_PREFETCH", "1")
    monkeypatch.setattr(prefetch, "_prefetcher", lambda: Recorder())
    monkeypatch.setattr(prefetch, "resource_store", lambda: Store())
    prepared = type("P", (), {"setup": RunSetup(), "key": ("run",)})()
    options = [5.0, 7.0, 10.0, 15.0, 20.0]
    prefetch.prefetch_neighbours(prepared, 10.0, 1.0, options, previous=15.0)
    prefetch.prefetch_neighbours(prepared, 10.0, 1.0, options, previous=7.0)
    prefetch.prefetch_neighbours(prepared, 10.0, 1.0, options)
    assert submitted == [[(7.0, 1.0), (15.0, 1.0)], [(15.0, 1.0), (7.0, 1.0)], [(15.0, 1.0), (7.0, 1.0)]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are set on Linux only")
def test_work_the_user_does_not_wait_for_runs_at_a_lower_os_priority():
    """The collapse guard's own pass (ui.prefetch.at_low_priority) runs in a thread whose niceness is raised, so on
    two cores the browser drawing the new cards is not starved by it; the caller gets its result and its errors."""
    import os
    import threading

    from ui import prefetch

    def niceness() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.current_thread().name

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    nice, name = prefetch.at_low_priority(niceness)
    assert name.startswith("lab-low-priority") and nice == min(19, own + prefetch.BACKGROUND_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the caller is untouched
    with pytest.raises(ZeroDivisionError):
        prefetch.at_low_priority(lambda: 1 / 0)


def test_the_servers_warm_up_prepares_exactly_what_a_new_sessions_first_screen_reads(monkeypatch):
    """serve.py starts ui.startup.warm_up as the server starts. A new session's first screen (digits, class 3,
    automatic α) must then read the run and the automatic α it built: after the warm-up, preparing a run
    and choosing α fail here, and the default page still shows its numbers."""
    from ssd_core.engine import SSDEngine
    from ui import resources, startup
    from ui.state import RunSetup

    startup.warm_up()
    prepared = resources.peek_prepared(RunSetup())
    assert prepared is not None

    def built_again(*args, **kwargs):
        raise AssertionError("the first screen computed what the warm-up had built")

    monkeypatch.setattr(resources, "_build", built_again)
    monkeypatch.setattr(SSDEngine, "auto", built_again)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(m.label == "Dampened" for m in at.metric)
    assert resources.peek_prepared(RunSetup()) is prepared


def test_presentation_mode_names_each_dataset_by_its_short_name():
    """A projected sidebar has room for "Fashion-MNIST", not for "Fashion-MNIST — 28×28 clothes"; it never shows the
    registry's key ("fashion_mnist")."""
    normal = new_app().run().selectbox(key="setup_dataset").options
    presenting = new_app()
    presenting.query_params["present"] = "1"
    present = presenting.run().selectbox(key="setup_dataset").options
    assert "Digits — 8×8 handwritten digits" in normal and "Digits" in present and "Shapes" in present
    assert [label.split(" — ")[0] for label in normal] == present
    assert not any("_" in label for label in present), present
