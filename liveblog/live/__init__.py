"""The reader stream, end to end: ``GET`` on ``path.PATH``, one story's live events.

* ``path``: the stream's path, written once (routing, the route, CORS).
* ``routing``: the way in: Starlette for everything but the stream, which skips its
  stack; the stream's route; the endpoint, behind the per-client ``cap``.
* ``endpoint``: one stream request, from joining to the last byte; ``request``: what it
  reads from the scope.
* ``join``: which story, whether the reader may see it, the replay range, the ended
  story; ``following``: the stories followed here, which let a reader join unread.
* ``replay``: what a reader missed, from memory or shared pages of the log.
* ``stream``: one open stream, written by the hub's fan-out; ``streams``: all of them
  and their ticker (heartbeats, send timeout, drops, shutdown via ``shutdown``);
  ``turns``: replays take turns.
* ``service``: ``Live``, the whole of it for one app run, built from the hub and the
  reads the app hands over (``liveblog.loaders``).

Nothing is imported here, so that ``liveblog.cors`` can read ``path`` without the rest.
"""
