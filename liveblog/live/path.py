"""The stream's path, written once: the ASGI shortcut, the Starlette route and the CORS
paths are all made from ``PATH``."""

from __future__ import annotations

from starlette.routing import compile_path

PATH = "/stories/{slug}/events"
# What Starlette's route for PATH matches: ``^/stories/(?P<slug>[^/]+)/events$``.
PATTERN = compile_path(PATH)[0]
METHODS = frozenset({"GET", "HEAD"})  # what the shortcut serves; the rest goes to Starlette
