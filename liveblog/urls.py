"""Addresses built from route names, never typed.

Every route has a name of its own (the ``routes`` lists in ``liveblog/views/`` and
``app.py``); whatever links to a page asks the router for the page's path, so a path is
written once, in its route. Links on our own pages and redirects stay paths
(``/stories/flood``); an address read somewhere else (a feed, JSON-LD, a canonical link)
is made absolute against the site's address (``Absolute``). Templates get the same
paths from ``url_path(name, **params)``; static files are ``url_path("static",
path="css/site.css")``, which names the file under its content hash
(``/static/3f2a.../css/site.css``: ``liveblog/assets.py``). ``path(conn, "static", ...)``
keeps the plain address, for what other sites load by a fixed URL (the widget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

from starlette.datastructures import URLPath
from starlette.requests import HTTPConnection


class Routes(Protocol):
    """What knows the routes: the app (or its router)."""

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath: ...


def path(conn: HTTPConnection, name: str, /, **params: Any) -> str:
    """The path of the route ``name`` with ``params`` filled in, e.g. ``/stories/flood``."""
    routes: Routes = conn.app
    return str(routes.url_path_for(name, **params))


@dataclass(frozen=True)
class Absolute:
    """Absolute addresses on this site, joined to ``base`` (``LIVEBLOG_BASE_URL`` or the
    request's own base URL: see ``seo.base_url``)."""

    conn: HTTPConnection
    base: str

    def page(self, name: str, /, **params: Any) -> str:
        """The absolute address of the route ``name``."""
        return self.of(path(self.conn, name, **params))

    def of(self, path_or_url: str) -> str:
        """A path (an uploaded image's, say) made absolute; an absolute URL as it is."""
        return urljoin(self.base, path_or_url)


def template_globals(
    routes: Routes, *, static: Callable[[str], str] | None = None
) -> dict[str, Callable[..., str]]:
    """``url_path(name, **params)`` for templates: pages and the fragments rendered
    without a request (stream payloads, feeds) alike. ``static`` maps a static file's
    path to its fingerprinted one (``Assets.versioned``)."""

    def url_path(name: str, /, **params: Any) -> str:
        if name == "static" and static is not None:
            params = {**params, "path": static(params["path"])}
        return str(routes.url_path_for(name, **params))

    return {"url_path": url_path}
