"""What `make run` starts (`streamlit run serve.py`): the dashboard (app.py) behind one small
middleware that serves every page from the root (see ui/page_paths.py), so a page URL opened
directly makes no request that fails, and with a warm-up that prepares the default first screen as the
server starts (ui/startup.py). `streamlit run app.py` works too, without either."""

import streamlit as st
from starlette.middleware import Middleware

from ui.page_paths import PagePathRedirect
from ui.startup import lifespan

app = st.App("app.py", lifespan=lifespan, middleware=[Middleware(PagePathRedirect)])
