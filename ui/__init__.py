"""Streamlit glue for Unlearning Lab: session state, shared sidebar, caching, views, export."""
