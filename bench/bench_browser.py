"""Real-browser benchmark of the dashboard: first-screen time and alpha-slider latency.

Starts ``streamlit run app.py`` on a free port, opens it in headless Chromium (Playwright), and
measures

- ``first_screen_s``: from opening the page on a freshly started server to the default result
  (metric cards and the per-class accuracy figure) being visible; ``first_screen_warm_s``: the
  same for a second browser tab, when the server's caches are warm; ``default_first_screen_s``: the
  default page (digits, automatic α) opened as soon as the server answers and the browser is up, and
  ``default_first_screen_from_launch_s`` the same from the server's launch (its start-up and warm-up
  included: what a user who opens the page at once waits in all);
- ``slider_latency_s``: for each of ``moves`` alpha-slider moves (arrow keys on the slider thumb),
  the time from the key press to the per-class accuracy figure showing the new alpha in its title
  (i.e. the re-dampened, re-evaluated, redrawn figure is visible); reported with its median.

Targets (#25): median slider latency <= 0.4 s and p95 <= 1 s for digits, shapes and Fashion-MNIST; first
complete screen on a fresh server under 4 s for digits and 10 s for shapes and Fashion-MNIST.
Run ``python bench/bench_browser.py`` (prints JSON) or call :func:`run` from bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ssd_core.settings import settings  # noqa: E402  (light: no torch)

CHROMIUM = settings().chromium
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the alpha ladder of the UI (ui.state.ALPHA_VALUES), repeated here so the bench imports no app code
ALPHA_VALUES = (0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(port: int | None = None, timeout_s: float = 90.0, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run app.py`` headless on 127.0.0.1 (a free port unless given), with ``env`` added to
    the environment; yields (url, process) once it answers its health check; stops it afterwards.
    The one server start of the benchmarks and browser tests (``load_test`` uses it too)."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "serve.py",
        "--server.headless", "true", "--server.fileWatcherType", "none", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
    ]
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    log = tempfile.NamedTemporaryFile("w+", prefix="streamlit-", suffix=".log", delete=False)
    process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout_s:.0f} s")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.seek(0)
        text = log.read()
        log.close()
        os.unlink(log.name)
        if "Traceback" in text:  # pytest shows this with a failing test: CI's run otherwise keeps no server log
            first = text.index("Traceback")
            print(f"the server logged a failure:\n{text[max(0, first - 200):first + 4000]}", file=sys.stderr)


@contextmanager
def streamlit_server(port: int | None = None, timeout_s: float = 90.0, threads: int = 1) -> Iterator[str]:
    """Run the dashboard headless in a subprocess; yields its URL; stops it afterwards."""
    with serve(port, timeout_s, {"UNLEARNING_LAB_THREADS": str(threads)}) as (url, _):
        yield url


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def figure_title(page, text: str):
    """The plotly title element of a figure whose title contains ``text``."""
    return page.locator(".js-plotly-plot .gtitle", has_text=text).first


def wait_for_default_result(page, alpha: float = 10, lam: float = 1, timeout_ms: float = 60_000) -> None:
    page.locator('[data-testid="stMetric"]', has_text="Dampened").wait_for(timeout=timeout_ms)
    figure_title(page, f"Per-class test accuracy  α = {alpha:g}, λ = {lam:g}").wait_for(timeout=timeout_ms)


def wait_for_first_screen(page, timeout_ms: float = 60_000) -> None:
    """The default first screen: automatic alpha chosen, cards and the per-class figure drawn."""
    page.locator('[data-testid="stMetric"]', has_text="Dampened").wait_for(timeout=timeout_ms)
    page.get_by_text("Auto: α =").first.wait_for(timeout=timeout_ms)
    figure_title(page, "Per-class test accuracy").wait_for(timeout=timeout_ms)


def alpha_thumb(page):
    slider = page.locator('[data-testid="stSlider"]', has_text="selection threshold")
    return slider.get_by_role("slider")


def move_alpha(page, key: str, expected: float, lam: float = 1, timeout_ms: float = 30_000) -> float:
    """Press ``key`` on the alpha slider; seconds until the per-class figure shows ``expected``."""
    thumb = alpha_thumb(page)
    thumb.focus()
    start = time.perf_counter()
    page.keyboard.press(key)
    figure_title(page, f"Per-class test accuracy  α = {expected:g}, λ = {lam:g}").wait_for(timeout=timeout_ms)
    return time.perf_counter() - start


def metric_value(page, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]', has_text=label).first
    return card.locator('[data-testid="stMetricValue"]').inner_text().strip()


MANUAL_DIGITS = "/?forget=class:0&alpha=10"  # alpha set by hand (the first screen's default is automatic)
SETUPS = {  # what each benchmark opens: a link (the page follows it) and the alpha it starts at
    "digits": (MANUAL_DIGITS, 10.0),
    "shapes": ("/?dataset=shapes&forget=class:3&alpha=10&lambda=1", 10.0),
    "fashion_mnist": ("/?dataset=fashion_mnist&forget=class:0&alpha=10&lambda=1", 10.0),
}
TARGET_MEDIAN_S, TARGET_P95_S = 0.4, 1.0  # #25, for every dataset


def fashion_installed() -> bool:
    """Whether the Fashion-MNIST files are on this machine (apt-get install dataset-fashion-mnist)."""
    from ssd_core.data import load_dataset

    try:
        load_dataset("fashion_mnist")
    except Exception:  # noqa: BLE001 - absent or unreadable: the bench skips it
        return False
    return True


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(moves: int = 10, port: int | None = None, screenshot: str | Path | None = None,
        viewport: tuple[int, int] = (1500, 1000), datasets: tuple[str, ...] = ("digits", "shapes"),
        threads: int | None = None) -> dict:
    """Measure first-screen time and alpha-slider latency in a real browser; returns a dict.

    ``threads`` None runs the server as ``make run`` does (torch threads: UNLEARNING_LAB_THREADS,
    default min(4, cores)). Slider moves step one rung of the ladder at a time (10 -> 15 -> 20 -> 15
    -> 10 -> 7 -> 5 -> 7 ...), like a user pressing the arrow keys; each latency is from the key press
    to the per-class figure showing the new alpha (cards and view redrawn)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found; set UNLEARNING_LAB_CHROMIUM")
    env = {} if threads is None else {"UNLEARNING_LAB_THREADS": str(threads)}
    out: dict = {"benchmark": "browser", "method": "ssd", "cpu_count": os.cpu_count(),
                 "server_threads": threads or "default", "datasets": {}}
    launched = time.perf_counter()
    with serve(port, 120.0, env) as (url, _), sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            if "digits" in datasets:  # the default first screen: digits class 3 with automatic alpha
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                start = time.perf_counter()
                page.goto(url)
                wait_for_first_screen(page, timeout_ms=180_000)
                out["default_first_screen_s"] = round(time.perf_counter() - start, 3)
                out["default_first_screen_from_launch_s"] = round(time.perf_counter() - launched, 3)
                page.close()
            for name in datasets:
                link, alpha = SETUPS[name]
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                start = time.perf_counter()
                page.goto(url + link)
                wait_for_default_result(page, alpha=alpha, timeout_ms=180_000)
                first_screen = time.perf_counter() - start

                second = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                start = time.perf_counter()
                second.goto(url + link)
                wait_for_default_result(second, alpha=alpha, timeout_ms=180_000)
                first_screen_warm = time.perf_counter() - start
                second.close()

                index = ALPHA_VALUES.index(alpha)
                latencies = []
                pattern = ["ArrowRight", "ArrowRight", "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft",
                           "ArrowRight", "ArrowRight"]  # 10 15 20 15 10 7 5 7 10 ...
                for i in range(moves):
                    key = pattern[i % len(pattern)]
                    index += 1 if key == "ArrowRight" else -1
                    latencies.append(move_alpha(page, key, ALPHA_VALUES[index]))
                if screenshot:
                    target = Path(screenshot)
                    target = target.with_name(f"{target.stem}-{name}{target.suffix}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(target))
                page.close()
                median = statistics.median(latencies) if latencies else float("nan")
                p95 = _percentile(latencies, 0.95)
                out["datasets"][name] = {
                    "first_screen_s": round(first_screen, 3),
                    "first_screen_warm_s": round(first_screen_warm, 3),
                    "slider_moves": len(latencies),
                    "slider_latency_s": [round(v, 3) for v in latencies],
                    "slider_latency_median_s": round(median, 3),
                    "slider_latency_p95_s": round(p95, 3),
                    "slider_latency_max_s": round(max(latencies), 3) if latencies else None,
                    "target_median_s": TARGET_MEDIAN_S,
                    "target_p95_s": TARGET_P95_S,
                    "meets_target": bool(median <= TARGET_MEDIAN_S and p95 <= TARGET_P95_S),
                }
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--screenshot", default=None, help="save a screenshot of the page after the moves")
    parser.add_argument("--datasets", default="digits,shapes,fashion_mnist",
                        help="comma-separated: digits, shapes, fashion_mnist (skipped when its files are not installed)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the server (default: as make run)")
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    datasets = tuple(d for d in args.datasets.split(",") if d and (d != "fashion_mnist" or fashion_installed()))
    result = run(moves=args.moves, port=args.port, screenshot=args.screenshot, datasets=datasets, threads=args.threads)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
