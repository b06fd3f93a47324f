"""The editor, in a process of its own: ``python -m bench.crowd.editor PORT SLUG DURATION``.
It reads the token from stdin, answers ``ready`` once it has started, then reads the
moment to begin (``time.monotonic()``, the same clock in every process) and prints its
posts as JSON.

An editor is another person on another machine. Run in the crowd's own event loop, each
answer waited behind the client's work for 1,450 connections (parsing 2.5 GB of
replays), and the figure measured the load generator as much as the server.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict
from typing import Any

from bench.client import Publisher
from bench.crowd.crowd import Post
from bench.crowd.seed import update_text
from bench.crowd.server import HOST

POST_TIMEOUT = 30.0


async def post_for(
    port: int, slug: str, token: str, duration: float, t0: float
) -> list[dict[str, Any]]:
    rng = random.Random(port)
    auth = {"Authorization": f"Bearer {token}"}
    publisher = Publisher(HOST, port, auth)
    path = f"/api/stories/{slug}/updates"
    posts: list[Post] = []
    try:
        for n in range(round(duration)):
            delay = t0 + n - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            data = update_text(rng)
            body = json.dumps(data.model_dump(include={"body", "headline", "key_event"}))
            began = time.monotonic()
            try:
                async with asyncio.timeout(POST_TIMEOUT):
                    status, _, _ = await publisher.post(path, body.encode())
                error = ""
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
                await publisher.close()
                publisher = Publisher(HOST, port, auth)
            ended = time.monotonic()
            posts.append(Post(began - t0, status, (ended - began) * 1000, error))
    finally:
        await publisher.close()
    return [asdict(post) for post in posts]


def main() -> None:
    port, slug, duration = sys.argv[1:4]
    token = sys.stdin.readline().strip()
    # Started (interpreter, imports) before the crowd comes, as a real editor's browser
    # is: a cold start beside the crowd cost the first post a second of this process's
    # own start-up on a busy 2-core machine.
    print("ready", flush=True)
    t0 = float(sys.stdin.readline())
    posts = asyncio.run(post_for(int(port), slug, token, float(duration), t0))
    json.dump(posts, sys.stdout)


if __name__ == "__main__":
    main()
