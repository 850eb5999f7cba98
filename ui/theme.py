"""Presentation mode: a sidebar toggle (drawn by app.py on every page) that switches every figure to
the projector theme (larger type, Okabe-Ito colour-blind-safe palette; see
``unlearning_lab.figures.apply_theme``) and the page to larger text.

Pages and views show charts through :func:`show_chart` (or pass figures through :func:`themed`),
so the toggle reaches every figure, including the ones redrawn inside fragments.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

K_PRESENTATION = "presentation_mode"
P_PRESENT = "present"  # in the URL while presentation mode is on: a reload (F5 in class) or a shared link keeps it

PRESENTATION_CSS = """
<style>
html { font-size: 20px; }
.block-container { max-width: 100% !important; padding-left: 2.5rem; padding-right: 2.5rem; }
h1 { font-size: 2.6rem !important; }
h2, h3 { font-size: 1.9rem !important; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.15rem; line-height: 1.55; }
[data-testid="stMetricValue"] p { font-size: clamp(1.5rem, 4.2vw, 2.6rem) !important; font-weight: 700; line-height: 1.2;
                                   white-space: nowrap; }
[data-testid="stMetricLabel"] p { font-size: 1.15rem !important; font-weight: 600; color: #000 !important; }
[data-testid="stMetricDelta"] p { font-size: 1.1rem !important; }
[data-testid="stSidebar"] * { font-size: 1.02rem; }
[data-testid="stWidgetLabel"] p { font-size: 1.1rem !important; font-weight: 600; color: #000; }
[data-testid="stCaptionContainer"] { font-size: 1rem !important; color: #222 !important; }
.katex { font-size: 1.45em !important; }
</style>
"""


def presentation_on() -> bool:
    return bool(st.session_state.get(K_PRESENTATION, False))


def current_theme() -> str:
    """The figure theme of this session: "presentation" or "default"."""
    return "presentation" if presentation_on() else "default"


def presentation_toggle() -> bool:
    """The sidebar switch; when on, also inject the larger-text CSS and keep ``present=1`` in the URL.
    Call once per run (app.py), before the page: a new session (a reload, a shared link) starts from the URL."""
    if K_PRESENTATION not in st.session_state:
        st.session_state[K_PRESENTATION] = st.query_params.get(P_PRESENT) == "1"
    on = st.sidebar.toggle(
        "Presentation mode", key=K_PRESENTATION,
        help="For a projector: larger text and figures in a high-contrast, colour-blind-safe palette (Okabe-Ito). "
        "Kept in the page's link, so a reload keeps it.",
    )
    if on and st.query_params.get(P_PRESENT) != "1":
        st.query_params[P_PRESENT] = "1"
    elif not on and P_PRESENT in st.query_params:
        del st.query_params[P_PRESENT]
    if on:
        st.html(PRESENTATION_CSS)
    return bool(on)


def themed(fig: Any, theme: str | None = None) -> Any:
    """``fig`` in this session's theme (unchanged in the default theme)."""
    from unlearning_lab.figures import apply_theme

    name = theme or current_theme()
    return fig if name == "default" else apply_theme(fig, name)


def show_chart(fig: Any, key: str, *, config: dict | None = None, **kwargs: Any) -> Any:
    """``st.plotly_chart`` with the session's theme; returns what st.plotly_chart returns (the
    selection state when ``on_select`` is given)."""
    return st.plotly_chart(themed(fig), key=key, theme=None, config=config or {"displaylogo": False}, **kwargs)
