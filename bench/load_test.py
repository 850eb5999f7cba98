"""Many users at once: N simulated users, each a real browser context, against one dashboard server.

For each N (default 1, 10 and 30) the script starts a fresh ``streamlit run app.py`` (headless,
no file watcher, 127.0.0.1 only, a free port), launches one headless Chromium and opens N browser
contexts (separate cookies and sessions, like N people). Each user

1. opens the app on class 0 with alpha 10 set by hand and waits for the result (metric cards + the
   per-class accuracy figure);
2. changes the forget class in the sidebar (user i picks class 1 + i mod 9) and waits until the
   page shows the new run (its model card and the URL say so);
3. moves the alpha slider ``moves`` times with the keyboard and measures, for each move, the time
   from the key press to the per-class accuracy figure showing the new alpha in its title.

Between actions a user pauses for a seeded random 0.5 to 1.5 times ``think_s`` (default 1 s);
users arrive ``--ramp`` seconds apart (default 0.1 s: a class opening a link at once).

``--mode websocket`` runs the same visit with each user as a bare Streamlit websocket session
(the browser's protocol: BackMsg/ForwardMsg protobufs, fragment reruns for the slider, no
rendering). Its latencies are the server's; in browser mode on a small machine the N Chromium
renderers share the CPUs with the server and dominate what is measured (``client_cpu_s`` and
``server_cpu_s`` in the report say how the CPU time was split).

Reported per N: slider-to-figure latency (p50, p95, max), time to the first result and to a new
forget class, errors (a step that failed or timed out, or an error/exception box on the page), and
the server's peak memory: the largest sum of VmRSS over the server process and its children,
sampled from /proc every 0.25 s, and the server's own VmHWM (psutil is not needed).

Targets: 30 users, no errors, p95 slider latency < 5 s, peak server memory < 4 GB.
Everything is bounded by a global deadline (default 8 minutes): users still running then are
cancelled and counted as errors, and the script stops by itself. Prints JSON.

    python bench/load_test.py                       # N = 1, 10, 30 in real browser contexts
    python bench/load_test.py --mode websocket      # the same, the server's own latency
    python bench/load_test.py --users 2 --moves 2   # a quick smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_browser import ALPHA_VALUES, CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402  (one copy of the server start)

DEFAULT_ALPHA = 10
START_QUERY = "forget=class:0&alpha=10"  # every user starts on class 0 with alpha set by hand
TARGETS = {"users": 30, "errors": 0, "slider_latency_p95_s": 5.0, "peak_server_rss_mb": 4096}
KB = 1024


# ---------------------------------------------------------------------------------------------
# The server and its memory


@contextmanager
def streamlit_server(timeout_s: float = 90.0, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """The dashboard on 127.0.0.1 and a free port (``bench_browser.serve``, one torch thread unless
    ``env`` says otherwise); yields (url, process); stops it afterwards."""
    with serve(timeout_s=timeout_s, env={"UNLEARNING_LAB_THREADS": "1", **(env or {})}) as running:
        yield running


def _status_kb(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/<pid>/task/*/children)."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        seen.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
            except (OSError, ValueError):
                continue
    return seen


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / ticks


def client_pids(server_pid: int) -> list[int]:
    """This script's descendants (Playwright's driver and Chromium), without the server."""
    server = set(process_tree(server_pid))
    return [p for p in process_tree(os.getpid()) if p not in server and p != os.getpid()]


class MemorySampler:
    """Samples the summed VmRSS of a process tree in a background thread; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = sum(_status_kb(p, "VmRSS") for p in process_tree(self.pid))
        self.peak_kb = max(self.peak_kb, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join(timeout=5)

    def hwm_kb(self) -> int:
        """The server process's own high-water mark (VmHWM) plus its children's."""
        return sum(_status_kb(p, "VmHWM") for p in process_tree(self.pid))


# ---------------------------------------------------------------------------------------------
# One user


def _figure(page, alpha: float, lam: float = 1):
    return page.locator(".js-plotly-plot .gtitle", has_text=f"Per-class test accuracy  α = {alpha:g}, λ = {lam:g}").first


async def _wait_idle(page, timeout_ms: float) -> None:
    """Wait until the script run in progress (if any) has finished: Streamlit's running indicator is gone."""
    await page.locator('[data-testid="stStatusWidget"]').first.wait_for(state="hidden", timeout=timeout_ms)


async def _pick_option(page, label: str, option: str, timeout_s: float) -> None:
    """Open a selectbox and pick an option, as a person would: if a rerun closes the list, open it again."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    box = page.locator('[data-testid="stSelectbox"]', has_text=label).first
    wanted = page.get_by_role("option", name=option, exact=True).first
    while True:
        remaining_ms = max(1000.0, (deadline - asyncio.get_running_loop().time()) * 1000)
        await _wait_idle(page, remaining_ms)
        await box.click(timeout=remaining_ms)
        try:
            await wanted.click(timeout=min(5000.0, remaining_ms))
            return
        except Exception:  # the list closed under us; try again until the deadline
            if asyncio.get_running_loop().time() > deadline:
                raise
            await page.keyboard.press("Escape")


async def _page_errors(page) -> list[str]:
    """Error boxes and exceptions on the page (one sentence each)."""
    found = []
    for selector in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        for text in await page.locator(selector).all_inner_texts():
            found.append(" ".join(text.split())[:200])
    return found


async def simulate_user(browser, url: str, index: int, moves: int, timeout_s: float, start_delay_s: float,
                        think_s: float = 1.0) -> dict[str, Any]:
    """One user's visit; returns timings and an error (None when everything worked).

    Between actions the user 'thinks' for a seeded random 0.5 to 1.5 times ``think_s`` seconds.
    """
    result: dict[str, Any] = {"user": index, "first_screen_s": None, "class_change_s": None,
                              "slider_latency_s": [], "error": None}
    rng = random.Random(index)

    async def think() -> None:
        await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

    await asyncio.sleep(start_delay_s)
    timeout_ms = timeout_s * 1000
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    step = "opening the app"
    try:
        page = await context.new_page()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await page.goto(f"{url}/?{START_QUERY}", timeout=timeout_ms)
        await page.locator('[data-testid="stMetric"]', has_text="Dampened").first.wait_for(timeout=timeout_ms)
        await _figure(page, DEFAULT_ALPHA).wait_for(timeout=timeout_ms)
        result["first_screen_s"] = round(loop.time() - start, 3)

        step = "changing the forget class"
        target = 1 + index % 9
        await think()
        start = loop.time()
        await _pick_option(page, "Class to forget", str(target), timeout_s)
        await page.get_by_text(f"forgetting class {target} (").first.wait_for(timeout=timeout_ms)
        await page.wait_for_url(f"**forget=class%3A{target}**", timeout=timeout_ms)
        await _figure(page, DEFAULT_ALPHA).wait_for(timeout=timeout_ms)
        result["class_change_s"] = round(loop.time() - start, 3)

        step = "moving the alpha slider"
        thumb = page.locator('[data-testid="stSlider"]', has_text="selection threshold").get_by_role("slider")
        position = ALPHA_VALUES.index(DEFAULT_ALPHA)
        for move in range(moves):
            key = "ArrowRight" if move % 2 == 0 else "ArrowLeft"  # 10 -> 15 -> 10 -> 15 ...
            position += 1 if key == "ArrowRight" else -1
            await think()
            await thumb.focus(timeout=timeout_ms)
            start = loop.time()
            await page.keyboard.press(key)
            await _figure(page, ALPHA_VALUES[position]).wait_for(timeout=timeout_ms)
            result["slider_latency_s"].append(round(loop.time() - start, 3))
        errors = await _page_errors(page)
        if errors:
            result["error"] = f"error shown on the page: {errors[0]}"
    except asyncio.CancelledError:
        result["error"] = f"cancelled at the deadline while {step}"
    except Exception as exc:  # noqa: BLE001 - a user's failure is a result, not a crash
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[0][:200] + (f" (last: {lines[-1][:200]})" if len(lines) > 1 else "")
        result["error"] = f"{step}: {type(exc).__name__}: {detail}"
    finally:
        try:
            await asyncio.shield(context.close())
        except BaseException:  # noqa: BLE001
            pass
    return result


# ---------------------------------------------------------------------------------------------
# One user as a bare websocket session (no browser)


class StreamlitSocket:
    """A minimal Streamlit client: the browser's websocket protocol (BackMsg/ForwardMsg protobufs),
    without rendering. It learns widget ids and fragment ids from the deltas it receives."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids: dict[str, str] = {}  # user key -> widget id
        self.fragments: dict[str, str] = {}  # user key -> fragment id
        self.query = ""
        self.page_hash = ""
        self.errors: list[str] = []
        self.recent: collections.deque[str] = collections.deque(maxlen=6)  # what the page last drew, for a failure

    @classmethod
    async def open(cls, url: str, timeout_s: float) -> StreamlitSocket:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        ws = await asyncio.wait_for(
            connect(url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=[Subprotocol("streamlit")], max_size=None,
                    open_timeout=timeout_s, ping_interval=None),
            timeout_s,
        )
        return cls(ws)

    async def rerun(self, widget_states: list | None = None, fragment_key: str | None = None) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        if widget_states:
            state.widget_states.widgets.extend(widget_states)
        if fragment_key is not None:
            state.fragment_id = self.fragments[fragment_key]
        await self.ws.send(msg.SerializeToString())

    def widget(self, key: str, *, string: str | None = None, strings: list[str] | None = None):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        ws = WidgetState(id=self.ids[key])
        if string is not None:
            ws.string_value = string
        if strings is not None:
            ws.string_array_value.data.extend(strings)
        return ws

    def _read(self, raw: bytes) -> tuple[str, Any]:
        """Update what is known from one ForwardMsg; returns (kind, payload)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = ForwardMsg.FromString(raw)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = msg.new_session.page_script_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            etype = element.WhichOneof("type")
            proto = getattr(element, etype)
            element_id = getattr(proto, "id", "") if hasattr(proto, "id") else ""
            if isinstance(element_id, str) and element_id.startswith("$$ID-"):
                key = element_id.split("-", 2)[-1]
                self.ids[key] = element_id
                if msg.delta.fragment_id:
                    self.fragments[key] = msg.delta.fragment_id
            text = getattr(proto, "body", None) or getattr(proto, "text", None) or getattr(proto, "label", None)
            self.recent.append(f"{etype}: {' '.join(str(text).split())[:80]}" if isinstance(text, str) and text else etype)
            if etype == "exception":
                self.errors.append(f"exception: {proto.message[:200]}")
            elif etype == "alert" and proto.format == 1:  # Alert.ERROR
                self.errors.append(f"error: {proto.body[:200]}")
            elif etype == "plotly_chart":
                try:
                    title = str(json.loads(proto.spec)["layout"].get("title", {}).get("text", ""))
                except (ValueError, KeyError, AttributeError):
                    title = ""
                return "figure", title
            return "element", etype
        return kind, msg

    async def until(self, done, timeout_s: float) -> None:
        """Read messages until ``done(kind, payload)`` is true (TimeoutError after ``timeout_s``)."""
        async def loop() -> None:
            while True:
                kind, payload = self._read(await self.ws.recv())
                if done(kind, payload):
                    return

        await asyncio.wait_for(loop(), timeout_s)

    async def close(self) -> None:
        await self.ws.close()


def _per_class_title(alpha: float) -> Any:
    return lambda kind, title: kind == "figure" and "Per-class test accuracy" in title and f"α = {alpha:g}," in title


async def _finished(sock: StreamlitSocket, timeout_s: float) -> None:
    await sock.until(lambda kind, _: kind == "script_finished", timeout_s)


async def simulate_socket_user(url: str, index: int, moves: int, timeout_s: float, start_delay_s: float,
                               think_s: float = 1.0) -> dict[str, Any]:
    """The same visit as :func:`simulate_user`, as a bare websocket session: the latencies are the
    server's (from sending the change to receiving the redrawn figure), with no browser rendering."""
    result: dict[str, Any] = {"user": index, "first_screen_s": None, "class_change_s": None,
                              "slider_latency_s": [], "error": None}
    rng = random.Random(index)

    async def think() -> None:
        await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))

    await asyncio.sleep(start_delay_s)
    loop = asyncio.get_running_loop()
    sock = None
    step = "opening the app"
    try:
        start = loop.time()
        sock = await StreamlitSocket.open(url, timeout_s)
        sock.query = START_QUERY
        await sock.rerun()
        await sock.until(_per_class_title(DEFAULT_ALPHA), timeout_s)
        result["first_screen_s"] = round(loop.time() - start, 3)
        await _finished(sock, timeout_s)

        step = "changing the forget class"
        target = 1 + index % 9
        await think()
        start = loop.time()
        await sock.rerun([sock.widget("setup_forget_class", string=str(target))])
        await sock.until(lambda kind, payload: kind == "page_info_changed" and f"forget=class%3A{target}" in sock.query,
                         timeout_s)
        await sock.until(_per_class_title(DEFAULT_ALPHA), timeout_s)
        result["class_change_s"] = round(loop.time() - start, 3)
        await _finished(sock, timeout_s)

        step = "moving the alpha slider"
        position = ALPHA_VALUES.index(DEFAULT_ALPHA)
        for move in range(moves):
            position += 1 if move % 2 == 0 else -1
            alpha = ALPHA_VALUES[position]
            await think()
            start = loop.time()
            await sock.rerun([sock.widget("alpha", strings=[f"{alpha:g}"])], fragment_key="alpha")
            await sock.until(_per_class_title(alpha), timeout_s)
            result["slider_latency_s"].append(round(loop.time() - start, 3))
            await _finished(sock, timeout_s)
            if f"forget=class%3A{target}" not in sock.query or f"alpha={alpha:g}" not in sock.query:
                raise RuntimeError(f"the session lost its settings: its link says {sock.query!r}")
        if sock.errors:
            result["error"] = f"shown on the page: {sock.errors[0]}"
    except asyncio.CancelledError:
        seen = f" (link {sock.query!r}; last drawn: {' | '.join(sock.recent)})" if sock is not None else ""
        result["error"] = f"cancelled at the deadline while {step}{seen}"
    except Exception as exc:  # noqa: BLE001
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        result["error"] = f"{step}: {type(exc).__name__}: {lines[0][:200]}"
    finally:
        if sock is not None:
            try:
                await asyncio.shield(sock.close())
            except BaseException:  # noqa: BLE001
                pass
    return result


# ---------------------------------------------------------------------------------------------
# N users


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def _run_users(browser, url: str, n: int, moves: int, timeout_s: float, ramp_s: float, think_s: float,
                     budget_s: float) -> list[dict]:
    """All N users at once (``browser`` None: bare websocket sessions)."""
    def user(i: int):
        delay = ramp_s * i / max(n, 1)
        if browser is None:
            return simulate_socket_user(url, i, moves, timeout_s, delay, think_s)
        return simulate_user(browser, url, i, moves, timeout_s, delay, think_s)

    tasks = [asyncio.ensure_future(user(i)) for i in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=max(budget_s, 1.0))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=30)
    results = []
    for i, task in enumerate(tasks):
        if task.done() and not task.cancelled() and task.exception() is None:
            results.append(task.result())
        else:
            results.append({"user": i, "first_screen_s": None, "class_change_s": None, "slider_latency_s": [],
                            "error": "did not finish before the deadline"})
    return results


def _summary(n: int, results: list[dict], wall_s: float, peak_kb: int, hwm_kb: int, moves: int,
             cpu: dict[str, float]) -> dict[str, Any]:
    latencies = [v for r in results for v in r["slider_latency_s"]]
    first = [r["first_screen_s"] for r in results if r["first_screen_s"] is not None]
    change = [r["class_change_s"] for r in results if r["class_change_s"] is not None]
    errors = [f"user {r['user']}: {r['error']}" for r in results if r["error"]]
    return {
        "users": n,
        "completed_users": sum(1 for r in results if not r["error"]),
        "errors": len(errors),
        "error_messages": errors[:10],
        "slider_moves": len(latencies),
        "slider_moves_planned": n * moves,
        "slider_latency_p50_s": _r(percentile(latencies, 50)),
        "slider_latency_p95_s": _r(percentile(latencies, 95)),
        "slider_latency_max_s": _r(max(latencies)) if latencies else None,
        "first_screen_p50_s": _r(percentile(first, 50)),
        "first_screen_p95_s": _r(percentile(first, 95)),
        "class_change_p50_s": _r(percentile(change, 50)),
        "class_change_p95_s": _r(percentile(change, 95)),
        "peak_server_rss_mb": round(peak_kb / KB, 1),
        "server_vmhwm_mb": round(hwm_kb / KB, 1),
        "wall_s": round(wall_s, 2),
        "server_cpu_s": round(cpu["server"], 1),
        "client_cpu_s": round(cpu["client"], 1),
    }


def run(
    ns: tuple[int, ...] | list[int] = (1, 10, 30),
    *,
    moves: int = 3,
    deadline_s: float = 480.0,
    step_timeout_s: float = 180.0,
    ramp_per_user_s: float = 0.1,
    think_s: float = 1.0,
    mode: str = "browser",
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the load test for each N in ``ns`` (a fresh server each) within ``deadline_s`` seconds in all.

    ``ramp_per_user_s``: seconds between two users' arrivals (default 0.1: a class opening the
    link at the same moment); ``think_s``: a user's mean pause between actions (default 1 s).
    ``mode``: "browser" (each user a Chromium context: what people see, but the browsers share this
    machine's CPUs with the server) or "websocket" (each user a bare Streamlit websocket session:
    the server's own latency, nothing rendered). Returns the JSON-ready report.
    """
    if mode not in ("browser", "websocket"):
        raise ValueError(f"mode must be 'browser' or 'websocket', not {mode!r}")
    if mode == "browser" and not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found; set UNLEARNING_LAB_CHROMIUM")
    t_end = time.monotonic() + deadline_s
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        if mode == "websocket":
            await run_all(None)
            return
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                await run_all(browser)
            finally:
                await browser.close()

    def client_cpu(server_pid: int) -> float:
        own = cpu_seconds([os.getpid()])  # this script: the websocket users, or Playwright's side
        return own + cpu_seconds(client_pids(server_pid))

    async def run_all(browser) -> None:
        for n in ns:
            remaining = t_end - time.monotonic()
            if remaining < 20:
                runs.append({"users": n, "skipped": "the global deadline was reached"})
                continue
            with streamlit_server(timeout_s=min(90.0, remaining), env=server_env) as (url, process):
                with MemorySampler(process.pid) as sampler:
                    cpu_start = {"server": cpu_seconds(process_tree(process.pid)), "client": client_cpu(process.pid)}
                    start = time.monotonic()
                    ramp = ramp_per_user_s * n
                    results = await _run_users(browser, url, n, moves, step_timeout_s, ramp, think_s,
                                               t_end - time.monotonic() - 10)
                    wall = time.monotonic() - start
                    cpu = {"server": cpu_seconds(process_tree(process.pid)) - cpu_start["server"],
                           "client": client_cpu(process.pid) - cpu_start["client"]}
                runs.append(_summary(n, results, wall, sampler.peak_kb, sampler.hwm_kb(), moves, cpu))

    asyncio.run(main())
    big = next((r for r in runs if r.get("users") == TARGETS["users"] and "skipped" not in r), None)
    meets = None
    if big is not None:
        meets = bool(big["errors"] == 0 and big["slider_latency_p95_s"] is not None
                     and big["slider_latency_p95_s"] < TARGETS["slider_latency_p95_s"]
                     and big["peak_server_rss_mb"] < TARGETS["peak_server_rss_mb"])
    return {
        "benchmark": "load",
        "mode": mode,
        "dataset": "digits",
        "model": "smallcnn",
        "method": "ssd",
        "moves_per_user": moves,
        "think_time_s": think_s,
        "arrival_interval_s": ramp_per_user_s,
        "runs": runs,
        "targets": TARGETS,
        "meets_targets": meets,
        "max_heavy_jobs": int((server_env or {}).get("UNLEARNING_LAB_MAX_HEAVY_JOBS",
                                                     os.environ.get("UNLEARNING_LAB_MAX_HEAVY_JOBS", "2"))),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": ("client (Chromium, N contexts) and server share this machine's CPUs" if mode == "browser" else
                 "bare websocket sessions: the server's latency, no rendering; client and server share the CPUs"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 30], help="the values of N to run")
    parser.add_argument("--moves", type=int, default=3, help="alpha-slider moves per user")
    parser.add_argument("--deadline", type=float, default=480.0, help="global deadline in seconds")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a user's actions, seconds")
    parser.add_argument("--ramp", type=float, default=0.1, help="seconds between two users' arrivals")
    parser.add_argument("--mode", choices=["browser", "websocket"], default="browser",
                        help="users as Chromium contexts (default) or as bare websocket sessions")
    parser.add_argument("--json", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    report = run(tuple(args.users), moves=args.moves, deadline_s=args.deadline, think_s=args.think, mode=args.mode,
                 ramp_per_user_s=args.ramp)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
