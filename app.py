"""Unlearning Lab: page config and navigation over app_pages/ (nothing else lives here).

The pages live in app_pages/, not pages/: Streamlit treats a folder called pages/ next to the
entry point as its legacy multipage layout, and then runs a page's file without this script on a
fresh server's first request (and on every run under streamlit.testing), skipping the navigation,
the URL sync and the mirror below.
"""

from pathlib import Path

import streamlit as st

from ui import links
from ui.history import one_entry_per_page
from ui.startup import load_libraries, load_plugins
from ui.style import apply_style
from ui.theme import presentation_toggle

ICON = Path(__file__).resolve().parent / "assets" / "icon.png"  # a local file: a material icon is fetched from outside
st.set_page_config(page_title="Unlearning Lab", page_icon=str(ICON), layout="wide")
apply_style()
presentation_toggle()  # projector mode: larger text, colour-blind-safe figures
one_entry_per_page()  # Back after a click in the navigation returns to the page before at once
page = st.navigation(
    [
        st.Page("app_pages/unlearn.py", title="Unlearn", icon=":material/auto_fix_high:", default=True),
        st.Page("app_pages/lesson.py", title="Lesson", icon=":material/cast_for_education:"),
        st.Page("app_pages/sweep.py", title="Landscape", icon=":material/grid_on:"),
        st.Page("app_pages/compare.py", title="Compare methods", icon=":material/compare_arrows:"),
        st.Page("app_pages/instances.py", title="Forget instances", icon=":material/photo_library:"),
        st.Page("app_pages/saps.py", title="SAPS selection", icon=":material/filter_center_focus:"),
        st.Page("app_pages/audit.py", title="Audit", icon=":material/fact_check:"),
        st.Page("app_pages/about.py", title="How SSD works", icon=":material/school:"),
    ]
)
load_libraries()  # once per server: sessions arriving together must not import torch side by side
for problem in load_plugins():  # the PLUGINS setting: the CLI's --plugin files, for the dashboard
    st.error(problem, icon=":material/extension_off:")
from ui.layout import take_cancel
from ui.sidebar import follow_url  # heavy (torch): imported after load_libraries

take_cancel()  # a Cancel clicked during the last run: say so, and keep its work from starting again at once
follow_url(page)  # the run setup follows a URL changed from outside (a shared link, the back button)
page.run()
links.mirror()  # keep the URL (its path names the page) a shareable link of what is on screen
