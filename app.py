"""Unlearning Lab: page config and navigation over pages/ (nothing else lives here)."""

import streamlit as st

st.set_page_config(page_title="Unlearning Lab", page_icon=":material/neurology:", layout="wide")
st.title("Unlearning Lab")
st.write("The dashboard is being built; use `python -m ssd_core unlearn --help` meanwhile.")
