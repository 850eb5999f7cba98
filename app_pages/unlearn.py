"""Unlearn: pick what to forget in the sidebar, move alpha and lambda, and watch the effect."""

import streamlit as st

from ui.style import preload_charts

st.title("Selective Synaptic Dampening, live")
st.markdown(
    "SSD forgets by finding the parameters that matter far more to the **forget set** than to the "
    "training data as a whole, and shrinking them. Pick what to forget on the left, then move **α** "
    "(which parameters count as specialised) and **λ** (how hard they are shrunk)."
)
preload = preload_charts()  # the browser fetches plotly.js while torch and the model load

from ui import layout, live, sidebar  # heavy (torch): imported after the first paint

setup = sidebar.run_setup()
if setup is None:
    preload.empty()
    st.info("Finish the run setup in the sidebar to see results.", icon=":material/arrow_back:")
else:
    prepared = layout.prepare_with_status(setup)
    preload.empty()
    if prepared is not None:
        layout.model_card(prepared)
        live.live_panel(prepared)
