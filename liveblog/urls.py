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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

from starlette.datastructures import URLPath
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount, NoMatchFound, Route


class Routes(Protocol):
    """What knows the routes: the app (or its router)."""

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath: ...


# Starlette finds a route by name by asking every route in turn, each refusal an
# exception: ~0.2 ms for a route far down the list (a post's Location, its fragment's
# links). The routes of each name, in order, are indexed once per router (kept on it,
# with the length of the route list it was made from: routes added later remake it).
_INDEX = "_liveblog_route_index"


def _index(routes: Sequence[BaseRoute]) -> dict[str, list[BaseRoute]]:
    """The named routes and mounts up to the first route that could answer for any name
    (an unnamed mount, or another kind): past it, only the full search is right."""
    index: dict[str, list[BaseRoute]] = {}
    for route in routes:
        if not isinstance(route, Route | Mount) or route.name is None:
            break
        if isinstance(route, Mount) and route.routes:
            break  # it answers for "name:sub" names too
        index.setdefault(route.name, []).append(route)
    return index


def url_path_for(routes: Routes, name: str, /, **params: Any) -> URLPath:
    """``routes.url_path_for(name, **params)``: the same answer, found without the search
    when the router's routes are indexed."""
    router = getattr(routes, "router", routes)
    listed = getattr(router, "routes", None)
    if isinstance(listed, list):
        known: tuple[int, dict[str, list[BaseRoute]]] | None = getattr(router, _INDEX, None)
        if known is None or known[0] != len(listed):
            known = (len(listed), _index(listed))
            setattr(router, _INDEX, known)
        for route in known[1].get(name, ()):
            try:
                return route.url_path_for(name, **params)
            except NoMatchFound:
                continue
    return routes.url_path_for(name, **params)


def path(conn: HTTPConnection, name: str, /, **params: Any) -> str:
    """The path of the route ``name`` with ``params`` filled in, e.g. ``/stories/flood``."""
    routes: Routes = conn.app
    return str(url_path_for(routes, name, **params))


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
        return str(url_path_for(routes, name, **params))

    return {"url_path": url_path}
