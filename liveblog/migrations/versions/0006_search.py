"""Revision 0006 (after 0005, 2026-12-03): full-text search (docs/search.md).

SQLite: a contentless FTS5 table, ``search_index``, filled from every story (row
``2 * id + 1``: title, standfirst) and every update (row ``2 * id``: headline, body), and
kept in step by triggers. PostgreSQL: a stored generated ``tsvector`` column,
``search_vector``, on each table with a GIN index on it, in the text search
configuration named by ``LIVEBLOG_SEARCH_LANGUAGE`` when this revision runs (default
``english``; docs/search.md says how to change it later).

Neither is described by the models: ``liveblog.search.include_name`` keeps them out of
autogenerate and the schema comparisons. A later revision that copies ``story`` or
``"update"`` (batch mode on SQLite) drops their triggers with the old table: it must
create them again (``_sqlite_triggers`` below) and rebuild the index. Revision 0007 adds
the story's lead text to the index in the same way (drop, create, refill).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "search_index"
COLUMN = "search_vector"  # PostgreSQL
# Each source table: (name, rowid of a row, its title column, its body column).
SOURCES = (
    ("story", "2 * {row}.id + 1", "{row}.title", "{row}.summary"),
    ('"update"', "2 * {row}.id", "coalesce({row}.headline, '')", "{row}.body"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgres_indexes(_language())
        return
    op.execute(
        f"CREATE VIRTUAL TABLE {TABLE} USING fts5(title, body, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    for table, rowid, title, body in SOURCES:
        op.execute(
            f"INSERT INTO {TABLE} (rowid, title, body) SELECT "
            f"{rowid.format(row=table)}, {title.format(row=table)}, {body.format(row=table)} "
            f"FROM {table}"
        )
    _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table, rowid, title, body in SOURCES:
        name = table.strip('"')

        def values(row: str) -> str:
            return f"{rowid.format(row=row)}, {title.format(row=row)}, {body.format(row=row)}"

        add = f"INSERT INTO {TABLE} (rowid, title, body) VALUES ({values('new')});"
        # A contentless table forgets a row given exactly what was indexed for it.
        remove = (
            f"INSERT INTO {TABLE} ({TABLE}, rowid, title, body) VALUES ('delete', {values('old')});"
        )
        watched = "title, summary" if name == "story" else "headline, body"
        op.execute(f"CREATE TRIGGER {TABLE}_{name}_insert AFTER INSERT ON {table} BEGIN {add} END")
        op.execute(
            f"CREATE TRIGGER {TABLE}_{name}_update AFTER UPDATE OF {watched} ON {table} "
            f"BEGIN {remove} {add} END"
        )
        op.execute(f"CREATE TRIGGER {TABLE}_{name}_delete AFTER DELETE ON {table} BEGIN {remove} END")


def _language() -> str:
    language = os.environ.get("LIVEBLOG_SEARCH_LANGUAGE", "english")
    if not re.fullmatch(r"[a-z_]{1,63}", language):
        raise ValueError(f"LIVEBLOG_SEARCH_LANGUAGE={language!r} is not a configuration name")
    return language


def _postgres_indexes(language: str) -> None:
    # Stored, not an expression index: ranking reads the vector of every match, and
    # computing to_tsvector again for each costs ~0.1 ms a row (docs/search.md).
    config = f"'{language}'::regconfig"
    vectors = {
        "story": f"setweight(to_tsvector({config}, title), 'A') || "
        f"setweight(to_tsvector({config}, summary), 'B')",
        '"update"': f"setweight(to_tsvector({config}, coalesce(headline, '')), 'A') || "
        f"setweight(to_tsvector({config}, body), 'D')",
    }
    for table, vector in vectors.items():
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {COLUMN} tsvector "
            f"GENERATED ALWAYS AS ({vector}) STORED"
        )
        index = "ix_" + table.strip('"') + "_search"
        op.execute(f"CREATE INDEX {index} ON {table} USING gin ({COLUMN})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("story", '"update"'):
            # Its index goes with it.
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {COLUMN}")
        return
    for table, *_ in SOURCES:
        name = table.strip('"')
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}_{event}")
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
