"""Serve every page from the app's root, so a page URL opened directly never probes missing paths.

Streamlit's page URLs look like ``/compare``. When such a URL is opened directly (a reload, a
bookmark, a shared link), the browser first looks for the server under ``/compare/`` (its health
and host-config endpoints), gets two 404s, and only then tries ``/``. This ASGI middleware answers
a document request for a page path with a redirect to ``/?page=<name>&...`` (the app's own link
format, other parameters kept; ``/?...`` for the default page), so the page loads from the root and
every request succeeds. The app then opens the page, and the address shows its path again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PAGES_DIR = Path(__file__).resolve().parent.parent / "app_pages"
DEFAULT_PAGE = "unlearn"  # app.py's default page: served at the root itself


def page_names() -> frozenset[str]:
    return frozenset(p.stem for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))


def redirect_target(path: str, query: str, pages: frozenset[str]) -> str | None:
    """Where a request for ``path?query`` should go instead, or None to serve it as it is."""
    name = path.strip("/")
    if not name or "/" in name or name not in pages:
        return None
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
    page = [] if name == DEFAULT_PAGE else [("page", name)]  # the root is the default page already
    return "/?" + urlencode([*page, *params])


class PagePathRedirect:
    """ASGI middleware: ``GET /<page>?...`` -> ``307 /?page=<page>&...`` (everything else passes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pages = page_names()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") == "http" and scope.get("method") in ("GET", "HEAD"):
            target = redirect_target(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"),
                                     self.pages)
            if target is not None:
                await send({"type": "http.response.start", "status": 307,
                            "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0"),
                                        (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)
