"""bench/load_test.py: its helpers, and a two-user smoke run in real browser contexts."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


def _load_test():
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load_test = _load_test()


def _own_cache(tmp_path) -> dict[str, str]:
    """The server's own empty cache folder: a fresh server, as on a new machine, whatever the tests before
    it left in the session's cache. (Class changes that waited past the deadline in full suites were one
    session's forward pass running into another's torch.fx trace, fixed in ssd_core/prefix.py; a failure
    says what the page last drew, and the server's traceback.)"""
    return {"UNLEARNING_LAB_CACHE": str(tmp_path / "cache")}


def test_percentiles_interpolate_and_handle_empty_input():
    assert load_test.percentile([], 95) is None
    assert load_test.percentile([3.0], 50) == 3.0
    assert load_test.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert load_test.percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


def test_memory_of_a_process_tree_is_read_from_proc():
    child = subprocess.Popen([sys.executable, "-c", "x = bytearray(80 * 1024 * 1024); import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while load_test._status_kb(child.pid, "VmRSS") < 80 * 1024 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert child.pid in load_test.process_tree(os.getpid())
        with load_test.MemorySampler(os.getpid(), interval_s=0.05) as sampler:
            time.sleep(0.2)
        own = load_test._status_kb(os.getpid(), "VmRSS")
        assert sampler.peak_kb >= own + 80 * 1024  # this process plus the child's 80 MB
        assert sampler.hwm_kb() >= sampler.peak_kb * 0.9
        assert load_test.cpu_seconds([os.getpid()]) > 0
    finally:
        child.kill()
        child.wait()
    assert load_test._status_kb(child.pid, "VmRSS") == 0  # a process that is gone counts as nothing


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_two_simulated_users_run_without_errors_and_measure_latency(tmp_path):
    start = time.monotonic()
    report = load_test.run((2,), moves=2, deadline_s=240, think_s=0.2, server_env=_own_cache(tmp_path))
    assert time.monotonic() - start < 260  # bounded by its own deadline
    (result,) = report["runs"]
    assert result["users"] == 2
    assert result["errors"] == 0, result["error_messages"]
    assert result["completed_users"] == 2
    assert result["slider_moves"] == result["slider_moves_planned"] == 4
    assert 0 < result["slider_latency_p50_s"] <= result["slider_latency_p95_s"] <= result["slider_latency_max_s"]
    assert result["first_screen_p50_s"] > 0 and result["class_change_p50_s"] > 0
    assert 100 < result["peak_server_rss_mb"] < 4096  # a real server with torch loaded, under the target
    assert result["server_vmhwm_mb"] >= result["peak_server_rss_mb"] * 0.9
    assert report["meets_targets"] is None  # only judged for the 30-user run
    assert report["targets"] == {"users": 30, "errors": 0, "slider_latency_p95_s": 5.0, "peak_server_rss_mb": 4096}


def test_two_websocket_sessions_keep_their_own_settings_and_measure_the_server(tmp_path):
    """The same visit as bare Streamlit websocket sessions (no browser): the server's own latency."""
    report = load_test.run((2,), moves=2, deadline_s=180, think_s=0.2, mode="websocket", server_env=_own_cache(tmp_path))
    (result,) = report["runs"]
    assert report["mode"] == "websocket"
    assert result["errors"] == 0, result["error_messages"]  # includes: each session's link kept its class and alpha
    assert result["slider_moves"] == 4 and 0 < result["slider_latency_p50_s"] <= result["slider_latency_max_s"]
    assert 100 < result["peak_server_rss_mb"] < 4096
