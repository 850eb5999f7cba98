"""Unlearning Lab: page config and navigation over pages/ (nothing else lives here)."""

import streamlit as st

from ui import links
from ui.startup import load_libraries
from ui.style import apply_style
from ui.theme import presentation_toggle

st.set_page_config(page_title="Unlearning Lab", page_icon=":material/neurology:", layout="wide")
apply_style()
presentation_toggle()  # projector mode: larger text, colour-blind-safe figures
page = st.navigation(
    [
        st.Page("pages/unlearn.py", title="Unlearn", icon=":material/auto_fix_high:", default=True),
        st.Page("pages/lesson.py", title="Lesson", icon=":material/cast_for_education:"),
        st.Page("pages/sweep.py", title="Landscape", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare methods", icon=":material/compare_arrows:"),
        st.Page("pages/instances.py", title="Forget instances", icon=":material/photo_library:"),
        st.Page("pages/saps.py", title="SAPS selection", icon=":material/filter_center_focus:"),
        st.Page("pages/about.py", title="How SSD works", icon=":material/school:"),
    ]
)
links.follow_page_link(page)  # a shared link may name another page
load_libraries()  # once per server: sessions arriving together must not import torch side by side
page.run()
links.mirror(links.page_name(page))  # keep the URL a shareable link of what is on screen
