"""Full-text search over what readers may see: story titles and standfirsts, and
published updates (headline and body). One interface, two implementations chosen by the
database's dialect (docs/search.md):

- SQLite: one contentless FTS5 table, ``search_index``, kept in step with ``story`` and
  ``"update"`` by triggers (migration 0006). A story is row ``2 * id + 1``, an update
  row ``2 * id``, so stories and updates share one set of term statistics and one rank
  (``bm25`` with the title column weighted 10 to 1 over the body).
- PostgreSQL: a stored generated ``tsvector`` column, ``search_vector``, on ``story``
  and ``"update"``, each with a GIN index, in the text search configuration
  ``LIVEBLOG_SEARCH_LANGUAGE`` (which the query is parsed in too); ranked by
  ``ts_rank`` with titles and headlines weighted A, standfirsts B, bodies D.

Both index every row and decide what readers may see when they ask (published, not
deleted updates of live or ended stories: the rule of ``store._shown_in``), so a story
that turns draft or an update that is unpublished drops out of the results at once.
The reader's words are reduced to plain word tokens before they reach either engine,
so no query syntax of FTS5 or ``tsquery`` can be typed in (nor make a query fail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from liveblog.models import Story, StoryStatus, Update, UpdateState

MAX_QUERY = 200  # characters of a query that are read; the rest is ignored
MAX_TERMS = 12  # words of a query that are searched for
MAX_RESULTS = 1000  # how deep paging may go (offset + page)

# The objects migration 0006 makes that the models do not describe: the schema
# comparisons (migrations/env.py, tests/test_schema.py) leave them out, see include_name.
SQLITE_TABLE = "search_index"
POSTGRES_COLUMN = "search_vector"
POSTGRES_INDEXES = ("ix_story_search", "ix_update_search")

_WORD = re.compile(r"\w+")
_LANGUAGE = re.compile(r"^[a-z_]{1,63}$")
_READER_STATUSES = (StoryStatus.live.value, StoryStatus.ended.value)

Kind = Literal["story", "update"]


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: the search index is made by hand in migration
    0006 (an FTS5 virtual table and its shadow tables on SQLite; a generated column and
    its GIN index on PostgreSQL), so autogenerate and the schema tests must neither
    drop nor compare it."""
    if name is None:
        return True
    if type_ == "table":
        return name != SQLITE_TABLE and not name.startswith(SQLITE_TABLE + "_")
    if type_ == "index":
        return name not in POSTGRES_INDEXES
    if type_ == "column":
        return name != POSTGRES_COLUMN
    return True


def terms(query: str) -> list[str]:
    """The words searched for: letters and digits only, lower case, at most MAX_TERMS."""
    return _WORD.findall(query[:MAX_QUERY].casefold())[:MAX_TERMS]


def check_language(language: str) -> str:
    """A PostgreSQL text search configuration name (it is written into SQL as a literal)."""
    if not _LANGUAGE.fullmatch(language):
        raise ValueError("search language must be a text search configuration, e.g. english")
    return language


@dataclass(frozen=True)
class Hit:
    story: Story
    update: Update | None  # None: the story itself matched (its title or standfirst)


class Engine(Protocol):
    async def ranked(
        self, session: AsyncSession, words: list[str], *, limit: int, offset: int
    ) -> list[tuple[Kind, int]]:
        """``(kind, id)`` of the best matches readers may see, best first."""
        ...


class SqliteEngine:
    # FTS5 takes each word as a quoted string: a word is letters and digits only, so it
    # never holds a quote, and nothing of FTS5's own syntax (NEAR, *, ^, column:) remains.
    _QUERY = text(
        f"""
        SELECT m.rowid % 2 AS is_story, m.rowid / 2 AS id
        FROM {SQLITE_TABLE} AS m
        LEFT JOIN "update" AS u ON m.rowid % 2 = 0 AND u.id = m.rowid / 2
        JOIN story AS s ON s.id = coalesce(u.story_id, m.rowid / 2)
        WHERE {SQLITE_TABLE} MATCH :match
          AND s.status IN (:live, :ended)
          AND (m.rowid % 2 = 1 OR (u.state = :published AND u.deleted_at IS NULL))
        ORDER BY bm25({SQLITE_TABLE}, 10.0, 1.0), m.rowid DESC
        LIMIT :limit OFFSET :offset
        """
    )

    async def ranked(
        self, session: AsyncSession, words: list[str], *, limit: int, offset: int
    ) -> list[tuple[Kind, int]]:
        match = " ".join(f'"{word}"' for word in words)
        connection = await session.connection()
        rows = await connection.execute(
            self._QUERY,
            {
                "match": match,
                "live": _READER_STATUSES[0],
                "ended": _READER_STATUSES[1],
                "published": UpdateState.published.value,
                "limit": limit,
                "offset": offset,
            },
        )
        return [("story" if is_story else "update", int(id_)) for is_story, id_ in rows]


class PostgresEngine:
    def __init__(self, language: str) -> None:
        config = f"'{check_language(language)}'::regconfig"
        # plainto_tsquery ANDs the words and ignores any operator: it never fails to parse.
        self._query = text(
            f"""
            SELECT kind, id FROM (
              SELECT 'update' AS kind, "update".id AS id,
                     ts_rank("update".{POSTGRES_COLUMN}, q) AS score
              FROM "update" JOIN story ON story.id = "update".story_id,
                   plainto_tsquery({config}, :words) AS q
              WHERE "update".{POSTGRES_COLUMN} @@ q
                AND story.status IN (:live, :ended)
                AND "update".state = :published AND "update".deleted_at IS NULL
              UNION ALL
              SELECT 'story', story.id, ts_rank(story.{POSTGRES_COLUMN}, q)
              FROM story, plainto_tsquery({config}, :words) AS q
              WHERE story.{POSTGRES_COLUMN} @@ q AND story.status IN (:live, :ended)
            ) AS hits
            ORDER BY score DESC, kind, id DESC
            LIMIT :limit OFFSET :offset
            """
        )

    async def ranked(
        self, session: AsyncSession, words: list[str], *, limit: int, offset: int
    ) -> list[tuple[Kind, int]]:
        connection = await session.connection()
        rows = await connection.execute(
            self._query,
            {
                "words": " ".join(words),
                "live": _READER_STATUSES[0],
                "ended": _READER_STATUSES[1],
                "published": UpdateState.published.value,
                "limit": limit,
                "offset": offset,
            },
        )
        return [("story" if kind == "story" else "update", int(id_)) for kind, id_ in rows]


def engine_for(dialect: str, *, language: str) -> Engine:
    """The implementation for a database dialect (``sqlite`` or ``postgresql``)."""
    if dialect == "postgresql":
        return PostgresEngine(language)
    if dialect == "sqlite":
        return SqliteEngine()
    raise ValueError(f"no search for the {dialect} database")


async def search(
    session: AsyncSession, engine: Engine, query: str, *, limit: int, offset: int = 0
) -> list[Hit]:
    """The hits readers may see for ``query``, best first: at most ``limit`` of them, after
    skipping ``offset`` (no hits past MAX_RESULTS, and none for a query without words)."""
    words = terms(query)
    limit = min(limit, MAX_RESULTS - offset)
    if not words or limit <= 0:
        return []
    ranked = await engine.ranked(session, words, limit=limit, offset=offset)
    update_ids = [id_ for kind, id_ in ranked if kind == "update"]
    updates = {
        update.id: update
        for update in (
            await session.exec(select(Update).where(col(Update.id).in_(update_ids)))
        ).all()
    }
    story_ids = {id_ for kind, id_ in ranked if kind == "story"}
    story_ids.update(update.story_id for update in updates.values())
    stories = {
        story.id: story
        for story in (await session.exec(select(Story).where(col(Story.id).in_(story_ids)))).all()
    }
    hits = []
    for kind, id_ in ranked:
        if kind == "story":
            hits.append(Hit(stories[id_], None))
        else:
            update = updates[id_]
            hits.append(Hit(stories[update.story_id], update))
    return hits
