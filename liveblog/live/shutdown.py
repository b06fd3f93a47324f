"""Whether the server is shutting down: sse-starlette's shutdown signal, used on purpose.

Importing sse-starlette wraps uvicorn's ``Server.handle_exit`` (SIGINT, SIGTERM) so that
it also sets ``AppStatus.should_exit``. The stream ticker (``liveblog.live.streams``)
reads it and ends every open stream, which uvicorn would otherwise wait for before it
runs the lifespan's shutdown. Tests set the same switch to play a SIGTERM. Why this and
nothing else of sse-starlette, and where the wrap comes too late (the workers of a bare
``uvicorn --workers``): docs/architecture.md, "sse-starlette".
"""

from __future__ import annotations

from sse_starlette.sse import AppStatus


def server_exiting() -> bool:
    """True once the server was told to shut down (and until something resets it)."""
    return AppStatus.should_exit
