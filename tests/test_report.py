"""The one-click report: the command line it prints, its contents, and (in a real browser) every
figure drawn, the PDF, and the printed command reproducing the numbers shown."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import plotly.graph_objects as go
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ssd_core.cli import build_parser
from ssd_core.data import ForgetRequest
from ui.state import RunSetup
from unlearning_lab import report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
METRIC_KEYS = ("forget_test_acc", "forget_train_acc", "retain_test_acc", "retain_train_acc", "test_acc", "mia", "zrf")


def test_cli_args_cover_every_request_kind_and_parse():
    common = dict(dataset="digits", model="smallcnn", method="ssd", alpha=10.0, lam=0.5, seed=3)
    args = report.cli_args(request=ForgetRequest("class", 0), **common)
    assert args == ["unlearn", "--dataset", "digits", "--model", "smallcnn", "--forget-class", "0", "--method", "ssd",
                    "--alpha", "10", "--lambda", "0.5", "--seed", "3"]
    assert "--forget-subclass rocket" in report.cli_command(report.cli_args(
        request=ForgetRequest("subclass", "rocket"), **{**common, "dataset": "cifar20"}))
    args = report.cli_args(request=ForgetRequest("random", k=20, seed=3), params={"estimator": "fisher_exact"},
                           device="gpu", data_dir="/data dir", **common)
    parsed = build_parser().parse_args(args)
    assert parsed.forget_random == 20 and parsed.param == ["estimator=fisher_exact"] and parsed.device == "cuda"
    assert parsed.data_dir == "/data dir" and "'/data dir'" in report.cli_command(args)
    args = report.cli_args(request=ForgetRequest("indices", indices=(1, 5, 9, 10, 11, 12)), **common)
    assert args[args.index("--forget-indices") + 1] == "1,5,9-12"
    assert build_parser().parse_args(args).forget_indices == "1,5,9-12"


def test_build_report_embeds_everything_once():
    figs = {"a": go.Figure(go.Bar(y=[1, 2])), "b": go.Figure(go.Scatter(y=[3, 4])), "c": go.Figure(go.Heatmap(z=[[1]]))}
    html = report.build_report(
        setup={"dataset": "digits", "forget": "class 0 <b>"}, before={"forget_test_acc": 1.0, "mia": 0.9},
        after={"forget_test_acc": 0.0, "mia": float("nan")}, figures=figs, params={"alpha": 10.0, "lam": 1.0},
        environment={"torch": "2.x", "device": "cpu"}, seed=7, command="python -m ssd_core unlearn --seed 7",
        extra_rows=[("Parameters dampened", 0, 123)],
    )
    assert report.figure_count(html) == 3 and html.count("Plotly.newPlot") == 3
    assert html.count("* plotly.js v") == 1  # the library inlined once, in the first figure
    assert html.index("* plotly.js v") < html.index('id="fig-a"') < html.index('id="fig-b"')
    assert "class 0 &lt;b&gt;" in html  # user text is escaped
    cells = dict(re.findall(r'data-metric="(\w+)" data-which="after">([^<]*)<', html))
    assert cells == {"forget_test_acc": "0.0000", "mia": "n/a"}
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1))
    assert data["seed"] == 7 and data["after"]["mia"] is None and data["figures"] == ["a", "b", "c"]
    assert '<code id="cli-command">python -m ssd_core unlearn --seed 7</code>' in html
    for section in ("setup-table", "metrics-table", "params-table", "environment-table"):
        assert f'id="{section}"' in html


@pytest.fixture(scope="module")
def prepared():
    from ui import resources

    return resources.prepare(RunSetup(request=ForgetRequest("class", 0)))


def dashboard_report(prepared, alpha=20.0, lam=1.0, extra=None) -> str:
    from ui import export_panel
    from ui.views import ViewOptions

    options = ViewOptions(ratio_layer=prepared.default_layer(), weight_layer=prepared.default_layer())
    return export_panel._html(prepared, alpha, lam, options, "stem", "default", extra)


def test_dashboard_report_has_every_figure_parameters_environment_and_command(prepared):
    from ui import export_panel, landscape

    html = dashboard_report(prepared)
    assert report.figure_count(html) == 11  # every figure of every view
    assert "Unlearning Lab report" in html
    command = "python -m ssd_core unlearn --dataset digits --model smallcnn --forget-class 0 --method ssd --alpha 20 --lambda 1 --seed 0"
    assert f'<code id="cli-command">{command}</code>' in html
    for text in ("estimator", "batch_size", "torch", "python", "plotly", "device", "seed"):
        assert f"<th>{text}</th>" in html, text
    # non-default options travel in the command
    other = replace(prepared, setup=replace(prepared.setup, estimator="fisher_exact", batch_size=32))
    assert "--param estimator=fisher_exact --param batch_size=32" in export_panel.report_command(other, 10.0, 1.0)
    # a computed landscape adds its figures
    result, _ = landscape.run_landscape(prepared, [10.0, 30.0], [1.0])
    extra = {f"landscape-{k}": v for k, v in landscape.heatmap_figures(result, None).items()}
    assert report.figure_count(dashboard_report(prepared, extra=extra)) == 11 + 3


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_report_opens_in_the_browser_and_its_command_reproduces_its_numbers(prepared, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    from ssd_core.cli import main

    html = dashboard_report(prepared, alpha=20.0, lam=0.5)
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=list(report.CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.as_uri())
            page.wait_for_function("() => document.querySelectorAll('.plotly-graph-div .main-svg').length > 0")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.plotly-graph-div')).every(d => d.querySelector('.main-svg'))",
                timeout=60_000,
            )
            divs = page.locator(".plotly-graph-div").count()
            drawn = page.evaluate("() => document.querySelectorAll('.plotly-graph-div').length")
            shown = {(cell.get_attribute("data-metric"), cell.get_attribute("data-which")): cell.inner_text()
                     for cell in page.locator("td[data-metric]").all()}
            command = page.locator("#cli-command").inner_text()
            titles = page.eval_on_selector_all(".plotly-graph-div .gtitle", "els => els.map(e => e.textContent)")
        finally:
            browser.close()
    assert not errors, errors
    assert divs == drawn == report.figure_count(html) == 11
    assert any(t.startswith("Per-class test accuracy") for t in titles)

    # the command printed in the report, run in-process, gives the numbers printed in the report
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "ssd_core"] and "--alpha" in words and "0.5" in words
    out = tmp_path / "cli.json"
    capsys.readouterr()
    assert main(words[3:] + ["--quiet", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    compared = 0
    for key in METRIC_KEYS:
        for which in ("before", "after"):
            text = shown[(key, which)]
            expected = result[which][key]
            if text == "n/a":
                assert expected is None, (key, which)
            else:
                assert float(text) == pytest.approx(expected, abs=5e-5), (key, which, text, expected)
                compared += 1
    assert compared >= 12

    pdf = report.html_to_pdf(html)
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 3  # several pages of figures
    assert_within_the_page(pdf, save_as="report-pdf")
    with tempfile.TemporaryDirectory() as folder:  # the fallback without Playwright: chromium --print-to-pdf
        (Path(folder) / "report.html").write_text(html, encoding="utf-8")
        assert_within_the_page(report._pdf_with_cli(Path(folder) / "report.html", str(CHROMIUM), 90))


def assert_within_the_page(pdf: bytes, save_as: str | None = None) -> None:
    """Every page's right margin (and the 4 mm the print style keeps free before it) is blank: a figure drawn
    wider than the page is cut at the page's edge and leaves ink there. Each table stays on one page
    (no orphan rows), and the Reproduce text says what the command does."""
    pdfium = pytest.importorskip("pypdfium2")
    document = pdfium.PdfDocument(pdf)
    scale = 2.0  # pixels per point
    band = round(12 / 25.4 * 72 * scale)  # the right 12 mm
    pages_of: dict[str, set[int]] = {}
    reproduce_shown = False
    for number in range(len(document)):
        page = document[number]
        image = page.render(scale=scale, grayscale=True).to_pil()
        if save_as:  # to look at: test-artifacts/report-pdf-page-N.png
            ARTIFACTS.mkdir(exist_ok=True)
            image.save(ARTIFACTS / f"{save_as}-page-{number + 1}.png")
        strip = image.crop((image.width - band, 0, image.width, image.height))
        assert strip.getextrema()[0] >= 240, f"page {number + 1}: ink in the right margin (a figure or table cut)"
        text = re.sub(r"\s+", " ", page.get_textpage().get_text_range())
        for label in (*report.METRIC_LABELS.values(), "Seconds per step", "Environment", "platform"):
            if label in text:
                pages_of.setdefault(label, set()).add(number)
        if "This command recomputes" in text:
            assert "prints them as JSON" not in text and "--json FILE" in text
            reproduce_shown = True
    assert reproduce_shown
    metric_pages = {number for label in report.METRIC_LABELS.values() for number in pages_of.get(label, ())}
    assert len(metric_pages) == 1, pages_of  # the metrics table on one page
    assert max(pages_of["Environment"]) == max(pages_of["platform"]), pages_of  # the environment table under its heading
