"""What the dashboard and the reports need besides the ML library, without Streamlit.

- :mod:`.figures`, :mod:`.figures_compare`: every plotly figure (and the presentation theme);
- :mod:`.saliency`: captum attributions before and after unlearning;
- :mod:`.export`, :mod:`.report`: files to download, the one-click report;
- :mod:`.presets`: the papers' setups and classroom examples;
- :mod:`.uploads`: reading a user's zip of images, spooling uploads to disk, server folders;
- :mod:`.jobs`: the heavy-job gate; :mod:`.store`: results shared between sessions;
- :mod:`.text`: user text that stays text.

Dependencies point one way: ``ssd_core`` <- ``unlearning_lab`` <- ``ui`` and the pages.
"""
