"""Light page furniture (imports nothing heavy, so the first paint is not held up by torch)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

STYLE = Path(__file__).resolve().parent.parent / "assets" / "style.css"


def apply_style() -> None:
    """Load assets/style.css (small visual polish; the app works without it)."""
    if STYLE.is_file():
        st.html(f"<style>{STYLE.read_text()}</style>")


def preload_charts() -> st.delta_generator.DeltaGenerator:
    """Draw an invisible, empty chart so the browser starts loading plotly.js while the server is
    still loading the model; returns its placeholder (call ``.empty()`` on it when done)."""
    import plotly.graph_objects as go

    placeholder = st.empty()
    blank = go.Figure(layout={"height": 10, "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
                              "xaxis": {"visible": False}, "yaxis": {"visible": False},
                              "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)"})
    placeholder.plotly_chart(blank, key="preload-plotly", config={"displayModeBar": False, "staticPlot": True})
    return placeholder
