"""The hostile-crowd benchmark: ``liveblog serve`` as a user starts it, against a crowd
that replays a long story, never reads, never finishes its request, and reconnects all
at once, while an editor posts. ``python -m bench.crowd --help``; how to read it:
``docs/performance.md``.
"""
