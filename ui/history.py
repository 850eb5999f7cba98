"""One browser-history entry per page switch, so Back returns to the page before in one press.

A click in Streamlit's navigation pushes the new page's address without the query (``/lesson``),
and the app then writes the setup back into it (:func:`ui.links.mirror`), which Streamlit pushes as
a second entry (``/lesson?dataset=...``). Back then lands on the bare entry, the same page, and
only a second press leaves it. Streamlit offers no replace for a query change, so this installs a
small script in the browser: a push that only adds a query to a bare page address, the same path,
replaces that entry instead, and so does a push of the address already shown (compared query by query,
so a link's ``class:3`` and the app's ``class%3A3`` are the same). Every other push (a slider move, a
changed setup) is left as it is.
"""

from __future__ import annotations

import streamlit as st

SCRIPT = """<span id="lab-history"></span><script>
(() => {
  if (window.__labOneEntryPerPage) return;
  window.__labOneEntryPerPage = true;
  const push = window.history.pushState.bind(window.history);
  window.history.pushState = (state, title, url) => {
    const next = url ? new URL(url, window.location.href) : null;
    const here = window.location;
    const samePage = next && next.pathname === here.pathname;
    // the same query however it is encoded (a link's "class:3" is the app's "class%3A3")
    const query = (search) => new URLSearchParams(search).toString();
    if (samePage && ((here.search === "" && next.search !== "") || query(next.search) === query(here.search))) {
      return window.history.replaceState(state, title, url);
    }
    return push(state, title, url);
  };
})();
</script>"""


def one_entry_per_page() -> None:
    """Install the history script (once per browser tab; later runs find it there). Its element takes
    no room: assets/style.css hides the container holding ``#lab-history``."""
    st.html(SCRIPT, unsafe_allow_javascript=True, width="content")
