"""Revision 0007 (after 0006, 2026-12-03): stories as articles (issue 14): bylines,
categories, the lead text and the announced start; authors' bio and photo.

New columns are plain ADD COLUMNs on both databases (no table copy on SQLite, so the
search triggers of 0006 survive). The lead is searched with the standfirst: on SQLite
the story's row of ``search_index`` indexes ``summary || ' ' || lead``, so the FTS5
table is dropped, created and refilled (a contentless table forgets a row only given
exactly what was indexed) and the story's triggers made again; on PostgreSQL the
story's ``search_vector`` is added again with the lead at weight C (its GIN index goes
and comes with it), in ``LIVEBLOG_SEARCH_LANGUAGE`` as 0006 does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveblog.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "search_index"
COLUMN = "search_vector"
# The searched columns of a story: its title, and its body (0006: the standfirst only).
STORY_BODY = {True: "{row}.summary || ' ' || {row}.lead", False: "{row}.summary"}
UPDATE_SOURCE = ('"update"', "2 * {row}.id", "coalesce({row}.headline, '')", "{row}.body")


def upgrade() -> None:
    op.add_column("user", sa.Column("bio", sa.Text(), server_default="", nullable=False))
    op.add_column("user", sa.Column("photo_url", sa.String(length=2000), nullable=True))
    op.add_column("story", sa.Column("lead", sa.Text(), server_default="", nullable=False))
    op.add_column("story", sa.Column("lead_html", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "story",
        sa.Column("starts_at", liveblog.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_category_slug"), "category", ["slug"], unique=True)
    op.create_table(
        "story_category",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["category_id"], ["category.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.PrimaryKeyConstraint("story_id", "category_id"),
    )
    op.create_index(
        op.f("ix_story_category_category_id"), "story_category", ["category_id"], unique=False
    )
    op.create_table(
        "story_byline",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("story_id", "position"),
    )
    op.create_index(op.f("ix_story_byline_user_id"), "story_byline", ["user_id"], unique=False)
    _search(lead=True)


def downgrade() -> None:
    _search(lead=False)
    op.drop_index(op.f("ix_story_byline_user_id"), table_name="story_byline")
    op.drop_table("story_byline")
    op.drop_index(op.f("ix_story_category_category_id"), table_name="story_category")
    op.drop_table("story_category")
    op.drop_index(op.f("ix_category_slug"), table_name="category")
    op.drop_table("category")
    # Plain DROP COLUMN (SQLite 3.35+): no table copy, so the triggers stay.
    for name in ("starts_at", "lead_html", "lead"):
        op.drop_column("story", name)
    for name in ("photo_url", "bio"):
        op.drop_column("user", name)


def _search(*, lead: bool) -> None:
    """Index the story's body with (``lead``) or without the lead."""
    if op.get_bind().dialect.name == "postgresql":
        config = f"'{_language()}'::regconfig"
        vector = (
            f"setweight(to_tsvector({config}, title), 'A') || "
            f"setweight(to_tsvector({config}, summary), 'B')"
        )
        if lead:
            vector += f" || setweight(to_tsvector({config}, lead), 'C')"
        op.execute(f"ALTER TABLE story DROP COLUMN IF EXISTS {COLUMN}")
        op.execute(
            f"ALTER TABLE story ADD COLUMN {COLUMN} tsvector GENERATED ALWAYS AS ({vector}) STORED"
        )
        op.execute(f"CREATE INDEX ix_story_search ON story USING gin ({COLUMN})")
        return
    for table in ("story", "update"):
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{table}_{event}")
    op.execute(f"DROP TABLE IF EXISTS {TABLE}")
    op.execute(
        f"CREATE VIRTUAL TABLE {TABLE} USING fts5(title, body, content='', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    for table, rowid, title, body in _sources(lead):
        op.execute(
            f"INSERT INTO {TABLE} (rowid, title, body) SELECT "
            f"{rowid.format(row=table)}, {title.format(row=table)}, {body.format(row=table)} "
            f"FROM {table}"
        )
    _sqlite_triggers(lead=lead)


def _sources(lead: bool) -> tuple[tuple[str, str, str, str], ...]:
    return (("story", "2 * {row}.id + 1", "{row}.title", STORY_BODY[lead]), UPDATE_SOURCE)


def _sqlite_triggers(*, lead: bool) -> None:
    for table, rowid, title, body in _sources(lead):
        name = table.strip('"')

        def values(row: str) -> str:
            return f"{rowid.format(row=row)}, {title.format(row=row)}, {body.format(row=row)}"

        add = f"INSERT INTO {TABLE} (rowid, title, body) VALUES ({values('new')});"
        remove = (
            f"INSERT INTO {TABLE} ({TABLE}, rowid, title, body) VALUES ('delete', {values('old')});"
        )
        if name == "story":
            watched = "title, summary, lead" if lead else "title, summary"
        else:
            watched = "headline, body"
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{name}_{event}")
        op.execute(f"CREATE TRIGGER {TABLE}_{name}_insert AFTER INSERT ON {table} BEGIN {add} END")
        op.execute(
            f"CREATE TRIGGER {TABLE}_{name}_update AFTER UPDATE OF {watched} ON {table} "
            f"BEGIN {remove} {add} END"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_{name}_delete AFTER DELETE ON {table} BEGIN {remove} END"
        )


def _language() -> str:
    language = os.environ.get("LIVEBLOG_SEARCH_LANGUAGE", "english")
    if not re.fullmatch(r"[a-z_]{1,63}", language):
        raise ValueError(f"LIVEBLOG_SEARCH_LANGUAGE={language!r} is not a configuration name")
    return language
