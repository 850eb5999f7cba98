"""What `make run` starts (`streamlit run serve.py`): the dashboard (app.py) behind one small
middleware that serves every page from the root (see ui/page_paths.py), so a page URL opened
directly makes no request that fails. `streamlit run app.py` works too, without that."""

import streamlit as st
from starlette.middleware import Middleware

from ui.page_paths import PagePathRedirect

app = st.App("app.py", middleware=[Middleware(PagePathRedirect)])
