"""User-provided text shown in the page stays text.

Streamlit renders st.warning, st.error, st.caption, st.success and st.markdown bodies as Markdown
(with links, images, autolinked URLs and $-math). A value from a link, a file name, a tensor or
class name from an upload, or a folder path could therefore plant a clickable link or make every
visitor's browser fetch an outside image. :func:`plain` escapes every ASCII punctuation character
(CommonMark lets any of them be backslash-escaped), which breaks every Markdown and autolink
construct while the text reads the same; control characters become '?'. The renderer also turns
bare addresses into links after escapes are resolved (GitHub's autolink extension: 'https://…',
'www.…', 'name@host'), so a zero-width space is put where such an address would start ('https:​//',
'www​.', '@​'): the text looks the same and copies as a broken address.
"""

from __future__ import annotations

import re
import string

_ESCAPE = {ord(ch): "\\" + ch for ch in string.punctuation}
MAX_SHOWN = 60
ZWSP = "\u200b"
_AUTOLINK = re.compile(r"(?i)(://|www\.|@|mailto:|xmpp:)")


def printable(value: object, limit: int | None = MAX_SHOWN) -> str:
    """``value`` as one printable line, shortened to ``limit`` characters (None: no limit)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def plain(value: object, limit: int | None = MAX_SHOWN) -> str:
    """``value`` made safe to put inside a Markdown string: printable, shortened, every
    punctuation character escaped and every would-be address broken (no link, image, HTML,
    emphasis or math survives)."""
    text = _AUTOLINK.sub(lambda m: m.group(0)[0] + ZWSP + m.group(0)[1:], printable(value, limit))
    return text.translate(_ESCAPE)


def duration(seconds: float) -> str:
    """An estimate's length as people say it: '40 s' (5 s steps, at least 5) under 90 s, else '5 min'."""
    if seconds < 90:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    return f"{max(2, round(seconds / 60)):.0f} min"


def short_count(n: int) -> str:
    """A large count in a few characters, for a card's second line: 159,402 -> '159k', 11,173,962 -> '11.2M'."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"
