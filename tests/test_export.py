"""unlearning_lab.export: every exported file opens and holds what it says."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest
from PIL import Image

from ssd_core.checkpoints import ModelConfig, config_for_dataset, load_model
from ssd_core.dampening import dampen
from ssd_core.metrics import evaluate
from unlearning_lab import export, figures


@pytest.fixture(scope="module")
def result(digits_run):
    after_model, report = dampen(digits_run.model, digits_run.importances.full, digits_run.importances.forget, 10.0, 1.0)
    before = evaluate(digits_run.model, digits_run.split)
    after = evaluate(after_model, digits_run.split)
    figs = {
        "per-class-accuracy": figures.per_class_accuracy_figure(
            digits_run.dataset.classes, before.per_class_acc, after.per_class_acc, digits_run.split.forget_classes),
        "importance-scatter": figures.importance_scatter_figure(
            figures.sample_importances(digits_run.importances.full, digits_run.importances.forget, n=500), 10.0),
    }
    return after_model, report, before, after, figs


def test_metrics_csv_and_json_hold_the_numbers(digits_run, result):
    _, report, before, after, _ = result
    rows = export.metrics_rows(before, after, digits_run.dataset.classes, report)
    parsed = list(csv.DictReader(io.StringIO(export.metrics_csv(rows).decode())))
    by_metric = {(r["group"], r["metric"]): r for r in parsed}
    forget = by_metric[("summary", "forget_test_acc")]
    assert float(forget["before"]) == pytest.approx(before.forget_test_acc)
    assert float(forget["after"]) == pytest.approx(after.forget_test_acc)
    assert float(forget["change"]) == pytest.approx(after.forget_test_acc - before.forget_test_acc)
    # the SSD report's rows are grouped under the name the CLI and the page's JSON use (diagnostics.report)
    assert {r["group"] for r in parsed} == {"summary", "per_class_test_acc", "report", "report_per_layer"}
    assert int(by_metric[("report", "parameters_dampened")]["after"]) == report.total_selected
    assert float(by_metric[("report", "fraction_dampened")]["after"]) == pytest.approx(report.fraction_selected)
    per_layer = {r["metric"]: int(r["after"]) for r in parsed if r["group"] == "report_per_layer"}
    assert per_layer == {layer.name: layer.selected for layer in report.layers}
    assert sum(per_layer.values()) == report.total_selected
    assert float(by_metric[("per_class_test_acc", "class 0")]["after"]) == pytest.approx(after.per_class_acc[0])
    payload = json.loads(export.results_json({"before": before, "after": after, "diagnostics": {"report": report},
                                              "nan": float("nan")}))
    assert payload["after"]["per_class_acc"] == pytest.approx(after.per_class_acc)
    assert payload["diagnostics"]["report"]["total_selected"] == report.total_selected
    assert payload["nan"] is None  # strict JSON


def test_html_is_self_contained_and_has_every_figure(result):
    figs = result[4]
    html = export.figures_html(figs, "Report", subtitle="digits", explanations={"per-class-accuracy": "Bars <per class>."},
                               metrics=[{"metric": "forget_test_acc", "before": 1.0, "after": 0.0, "change": -1.0}])
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for name in figs:
        assert f'id="fig-{name}"' in html
    assert html.count("Plotly.newPlot") == len(figs)
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # plotly.js inlined exactly once
    assert "<script src=" not in html  # nothing loaded from the network
    assert "Bars &lt;per class&gt;." in html and "forget_test_acc" in html


def test_model_files_reload_and_reproduce_the_after_metrics(digits_run, result):
    after_model, _, _, after, _ = result
    config = config_for_dataset("smallcnn", digits_run.dataset)
    files = export.model_files(after_model, config, "digits-smallcnn-ssd a10", {"unlearning": {"alpha": 10.0}})
    assert set(files) == {"digits-smallcnn-ssd-a10.safetensors", "digits-smallcnn-ssd-a10.json"}
    meta = json.loads(files["digits-smallcnn-ssd-a10.json"])
    assert meta["unlearning"]["alpha"] == 10.0
    reloaded = load_model(files["digits-smallcnn-ssd-a10.safetensors"], ModelConfig.from_dict(meta))
    again = evaluate(reloaded, digits_run.split)
    assert again.per_class_acc == pytest.approx(after.per_class_acc)
    assert again.confusion == after.confusion
    assert again.forget_test_acc == pytest.approx(after.forget_test_acc)


def test_zip_bundle_has_everything():
    data = export.bundle(
        file_stem="run 1", metrics_csv_bytes=b"a,b\n", results_json_bytes=b"{}", html="<html></html>",
        model={"m.safetensors": b"123", "m.json": b"{}"}, images={"png/f.png": b"\x89PNG", "svg/f.svg": b"<svg/>"},
        readme="hello",
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == sorted(
            f"run-1/{p}" for p in ("metrics.csv", "results.json", "report.html", "model/m.safetensors", "model/m.json",
                                   "figures/png/f.png", "figures/svg/f.svg", "README.txt"))
        assert archive.read("run-1/model/m.safetensors") == b"123"


def test_modebar_config_names_the_file_and_format():
    config = export.modebar_config("digits/smallcnn a10", "svg")
    assert config["toImageButtonOptions"] == {"format": "svg", "filename": "digits-smallcnn-a10", "scale": 1}
    assert export.modebar_config("x")["toImageButtonOptions"]["scale"] == export.PNG_SCALE


def test_missing_browser_is_reported_not_raised_blindly(monkeypatch, result):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    available, message = export.image_export_status()
    assert not available and "Chrome or Chromium" in message
    with pytest.raises(export.ImageExportUnavailable):
        export.render_images(result[4])


@pytest.mark.skipif(export.find_browser() is None, reason="no Chrome/Chromium for kaleido on this machine")
def test_png_and_svg_images_are_valid(result):
    figs = result[4]
    images = export.render_images(figs, scale=2)
    assert sorted(images) == sorted(f"{fmt}/{name}.{fmt}" for fmt in ("png", "svg") for name in figs)
    png = Image.open(io.BytesIO(images["png/per-class-accuracy.png"]))
    png.verify()
    png = Image.open(io.BytesIO(images["png/per-class-accuracy.png"]))
    height = figs["per-class-accuracy"].layout.height
    assert png.format == "PNG" and png.size == (2 * export.DEFAULT_WIDTH, 2 * height)  # scale 2 of the layout size
    root = ET.fromstring(images["svg/importance-scatter.svg"])
    assert root.tag.endswith("svg")
    assert b"Per-class test accuracy" in images["svg/per-class-accuracy.svg"]
