"""Unlearning Lab: page config and navigation over pages/ (nothing else lives here)."""

import streamlit as st

from ui.style import apply_style

st.set_page_config(page_title="Unlearning Lab", page_icon=":material/neurology:", layout="wide")
apply_style()
page = st.navigation(
    [
        st.Page("pages/unlearn.py", title="Unlearn", icon=":material/auto_fix_high:", default=True),
        st.Page("pages/sweep.py", title="Alpha sweep", icon=":material/ssid_chart:"),
        st.Page("pages/about.py", title="How SSD works", icon=":material/school:"),
    ]
)
page.run()
