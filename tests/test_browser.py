"""The dashboard in a real browser: streamlit run + headless Chromium (Playwright)."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


def _bench():
    """bench/bench_browser.py holds the server and page helpers (one copy for test and benchmark)."""
    spec = importlib.util.spec_from_file_location("bench_browser", ROOT / "bench" / "bench_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture(scope="module")
def server_url():
    with bench.streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = bench.launch_browser(playwright)
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()


def test_default_result_slider_move_and_csv_download(page, server_url, tmp_path):
    page.goto(server_url)
    bench.wait_for_default_result(page, alpha=10, lam=1)  # complete default result, no clicks
    assert page.get_by_text("Forget (test)").first.is_visible()
    dampened_at_10 = int(bench.metric_value(page, "Dampened").replace(",", ""))
    assert dampened_at_10 > 0
    assert float(bench.metric_value(page, "Forget (test)").rstrip("%")) < 50  # the class is mostly forgotten

    # move alpha 10 -> 15 -> 20 with the keyboard; the figure must redraw with the new settings
    latency = bench.move_alpha(page, "ArrowRight", 15)
    assert latency < 10
    bench.move_alpha(page, "ArrowRight", 20)
    title = bench.figure_title(page, "Per-class test accuracy").text_content()
    assert "α = 20" in title
    page.locator('[data-testid="stMetric"]', has_text="Dampened").first.wait_for()
    dampened_at_20 = int(bench.metric_value(page, "Dampened").replace(",", ""))
    forget_at_20 = float(bench.metric_value(page, "Forget (test)").rstrip("%")) / 100
    assert dampened_at_20 < dampened_at_10  # higher alpha, fewer parameters dampened

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-unlearn.png"))

    # the export tab downloads the metrics of exactly what is on screen
    page.locator("[data-testid=\"stButtonGroup\"] button", has_text="Export").click()
    button = page.get_by_role("button", name="Metrics (CSV)")
    button.wait_for()
    with page.expect_download() as download_info:
        button.click()
    download = download_info.value
    assert download.suggested_filename == "digits-smallcnn-ssd-class0-a20-l1-metrics.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = {(r["group"], r["metric"]): r for r in csv.DictReader(io.StringIO(target.read_text()))}
    assert int(rows[("dampening", "parameters_dampened")]["after"]) == dampened_at_20
    assert float(rows[("summary", "forget_test_acc")]["before"]) > 0.9
    assert float(rows[("summary", "forget_test_acc")]["after"]) == pytest.approx(forget_at_20, abs=5e-4)
    page.screenshot(path=str(ARTIFACTS / "browser-export.png"))
