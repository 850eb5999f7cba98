"""Helpers for driving the dashboard with streamlit.testing (AppTest) like a user would."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest

TIMEOUT = 300
PAGES = ("unlearn", "lesson", "sweep", "compare", "instances", "saps", "audit", "about")


@contextmanager
def both_cores() -> Iterator[None]:
    """Torch on two threads (the CI machine's two cores) for a test that computes a lot on shapes in
    this process; the suite's default is one (conftest). The numbers do not change."""
    import torch

    before, env = torch.get_num_threads(), os.environ.get("UNLEARNING_LAB_THREADS")
    os.environ["UNLEARNING_LAB_THREADS"] = "2"
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("UNLEARNING_LAB_THREADS", None)
        else:
            os.environ["UNLEARNING_LAB_THREADS"] = env


def new_app(query: dict[str, str] | None = None) -> AppTest:
    """A new browser session (optionally opened on a URL's query parameters); not run yet."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    return at


def click_nav(at: AppTest, page: str) -> AppTest:
    """What a click on a page in the navigation does: Streamlit clears the query and opens the page."""
    at.query_params.clear()
    return at.switch_page(f"app_pages/{page}.py").run()


def shown_page(at: AppTest) -> str:
    """The page on screen: the stem of the script the last run finished on (in a browser, the
    address's path: /lesson)."""
    info = at._registered_pages.get(at._finished_page_script_hash, {})
    script = info.get("script_path")
    return Path(str(script)).stem if script else "unlearn"


def link_of(at: AppTest) -> dict[str, str]:
    """The page's address as a link into the app's root (/?page=lesson&...): the page its path names
    and the setup its query carries. The query itself never names the page a second time."""
    query = dict(at.query_params)
    assert "page" not in query, query
    return {"page": shown_page(at), **query}


def shown_text(markdown: str) -> str:
    """What a reader sees of Markdown whose punctuation was escaped (unlearning_lab.text.plain)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_data(at: AppTest) -> dict[str, list]:
    """Each chart's data (traces, without layout) by title: what a figure shows, for comparisons."""
    out = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        title = spec.get("layout", {}).get("title", {})
        name = title.get("text", "") if isinstance(title, dict) else str(title)
        out[name] = spec.get("data", [])
    return out


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def set_state(at: AppTest, **changes: Any) -> None:
    """Change the session's run setup directly (as a preset or a 'Use' button would)."""
    from ui.state import LabState

    current = at.session_state["_lab_state"] if "_lab_state" in at.session_state else LabState()
    at.session_state["_lab_state"] = replace(current, **changes)


def set_kept(at: AppTest, **values: Any) -> None:
    """Set page-local control values (ui.state.keep) before the next run draws them."""
    kept = dict(at.session_state["_lab_kept"]) if "_lab_kept" in at.session_state else {}
    kept.update(values)
    at.session_state["_lab_kept"] = kept
