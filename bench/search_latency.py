"""``python -m bench.search_latency [--updates N] [--queries N] [--postgres URL]``: search
latency over 10,000 updates, on SQLite and on PostgreSQL.

For each database: a fresh one (a temporary SQLite file; a new PostgreSQL database on the
server at ``--postgres``, dropped afterwards), migrated as ``liveblog db upgrade`` does
(FTS5 table and triggers; GIN indexes), then 100 stories and ``--updates`` updates of
30 to 80 words each, written through the tables (the FTS5 triggers and the indexes
maintained as the app's writes maintain them), with words drawn from a 5,000-word
vocabulary by Zipf's law, so that some words are in most updates and most words in
few, as in text. One update in ten is not published (draft, submitted, deleted): the
searches filter them as readers' searches do. Then ``--queries`` searches of one or two
words (common, middling and rare ones alike), each timed twice: the data function alone
(``liveblog.search.search``, one page of 21 hits) and the whole page
(``GET /search?q=`` through the app, rendering included). Prints median and p95.
On PostgreSQL the tables are vacuumed and analysed first, as autovacuum would.
docs/search.md quotes the output.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import insert

from liveblog import search
from liveblog.app import create_app
from liveblog.models import Story, StoryStatus, Update, UpdateState, User, utcnow
from liveblog.settings import Settings

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
VOCABULARY = 5_000
SYLLABLES = [c + v for c in "bdklmnrst" for v in "aeiou"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


async def seed(settings: Settings, *, updates: int, rng: random.Random) -> list[str]:
    """Fill the app's database; returns the vocabulary."""
    words = vocabulary(rng)
    weights = [1 / rank for rank in range(1, len(words) + 1)]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db = app.state.liveblog.db
        now = utcnow()
        async with db.transaction() as session:
            user = User(username="bench", display_name="Bench", password_hash="x")
            session.add(user)
            await session.flush()
            stories = []
            for n in range(100):
                title = " ".join(rng.choices(words, weights, k=rng.randint(3, 7))).capitalize()
                stories.append(
                    {
                        "slug": f"story-{n}",
                        "title": title,
                        "summary": " ".join(rng.choices(words, weights, k=20)),
                        "status": StoryStatus.ended if n % 2 else StoryStatus.live,
                        "created_at": now,
                        "updated_at": now,
                        "last_seq": 0,
                    }
                )
            # A fresh database: the stories are ids 1-100.
            await (await session.connection()).execute(insert(Story), stories)
        async with db.transaction() as session:
            rows = []
            for n in range(updates):
                body = " ".join(rng.choices(words, weights, k=rng.randint(30, 80)))
                kept = n % 10 != 0
                rows.append(
                    {
                        "story_id": 1 + n % 100,
                        "author_id": user.id,
                        "headline": " ".join(rng.choices(words, weights, k=4))
                        if n % 3 == 0
                        else None,
                        "body": body,
                        "body_html": f"<p>{body}</p>",
                        "state": UpdateState.published if kept else UpdateState.draft,
                        "published_seq": n if kept else None,
                        "created_at": now - timedelta(seconds=updates - n),
                        "deleted_at": None if n % 37 else now,
                    }
                )
            await (await session.connection()).execute(insert(Update), rows)
    return words


async def measure(
    settings: Settings, words: list[str], *, queries: int, rng: random.Random
) -> dict[str, list[float]]:
    # Common words (top 50), middling (50-1000) and rare ones, in equal shares.
    bands = (words[:50], words[50:1000], words[1000:])
    asked = []
    for n in range(queries):
        band = bands[n % 3]
        asked.append(" ".join(rng.sample(band, 1 + n % 2)))
    timings: dict[str, list[float]] = {"data function": [], "page": []}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        liveblog = app.state.liveblog
        engine = search.engine_for(liveblog.db.engine.dialect.name, language="english")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for query in asked[:20]:  # warm the caches and the pool
                await client.get("/search", params={"q": query})
            for query in asked:
                started = time.perf_counter()
                async with liveblog.db.session() as session:
                    await search.search(session, engine, query, limit=21)
                timings["data function"].append(time.perf_counter() - started)
                started = time.perf_counter()
                response = await client.get("/search", params={"q": query})
                timings["page"].append(time.perf_counter() - started)
                assert response.status_code == 200
    return timings


def report(name: str, timings: dict[str, list[float]]) -> None:
    for what, values in timings.items():
        ms = [value * 1000 for value in values]
        print(
            f"{name:<10} {what:<14} median {statistics.median(ms):7.2f} ms   "
            f"p95 {percentile(ms, 0.95):7.2f} ms   ({len(ms)} searches)"
        )


def run(settings: Settings, name: str, args: argparse.Namespace) -> None:
    rng = random.Random(14)
    words = asyncio.run(seed(settings, updates=args.updates, rng=rng))
    if settings.database_url:
        # What autovacuum does to a table after 10,000 inserts: statistics for the
        # planner, and the GIN index's pending list merged into the index.
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    report(name, asyncio.run(measure(settings, words, queries=args.queries, rng=rng)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search_latency", description=__doc__)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--postgres", default=POSTGRES, help="a server to make a database on")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    secret = SecretStr("bench" * 8)
    print(f"search latency, {args.updates} updates in 100 stories, {args.queries} queries")
    with tempfile.TemporaryDirectory() as data:
        run(Settings(data_dir=Path(data), secret_key=secret), "SQLite", args)
    if args.skip_postgres:
        return
    name = f"bench_search_{secrets.token_hex(4)}"
    with psycopg.connect(args.postgres, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        database_url = urlsplit(args.postgres)._replace(path="/" + name).geturl()
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(data_dir=Path(data), secret_key=secret, database_url=database_url)
            run(settings, "PostgreSQL", args)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
