"""Revision 0004 (after 0003, 2026-12-03): the newsroom workflow: the contributor role,
story teams, update states and versions."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveblog.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("draft", "submitted", "published", "returned", "rejected")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # A new value of the role type (SQLite keeps enums as plain strings).
        op.execute("ALTER TYPE role ADD VALUE IF NOT EXISTS 'contributor' BEFORE 'editor'")
    else:
        _widen_sqlite_role()
    state = sa.Enum(*STATES, name="updatestate")
    if postgres:
        state.create(op.get_bind(), checkfirst=True)
    # Plain ADD COLUMN on both databases (no references, so SQLite needs no table copy).
    # Every update written before this revision was shown to readers: published.
    op.add_column("update", sa.Column("state", state, server_default="published", nullable=False))
    op.add_column(
        "update", sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.add_column("update", sa.Column("return_note", sa.Text(), nullable=True))
    op.create_table(
        "story_team",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_at", liveblog.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("story_id", "user_id"),
    )
    op.create_index(op.f("ix_story_team_user_id"), "story_team", ["user_id"], unique=False)


def _widen_sqlite_role() -> None:
    """SQLite stores the role as VARCHAR(6), too short on paper for 'contributor' (SQLite
    never enforces a length; the declared type is what the models are compared with).
    A table copy (batch mode) cannot replace the user table while other tables refer to
    it, so the declared type is rewritten in place: the procedure SQLite's ALTER TABLE
    documentation gives for changes that leave the stored rows as they are."""
    op.execute("PRAGMA writable_schema = ON")
    version = op.get_bind().exec_driver_sql("PRAGMA schema_version").scalar_one()
    op.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'role VARCHAR(6) NOT NULL', "
        "'role VARCHAR(11) NOT NULL') WHERE type = 'table' AND name = 'user'"
    )
    op.execute(f"PRAGMA schema_version = {int(version) + 1}")
    op.execute("PRAGMA writable_schema = OFF")


def downgrade() -> None:
    # Contributors must be given another role first on PostgreSQL: a value cannot be
    # dropped from an enum type there, so the role type keeps 'contributor'. On SQLite
    # DROP COLUMN needs SQLite 3.35 (2021) or later (see 0003).
    op.drop_index(op.f("ix_story_team_user_id"), table_name="story_team")
    op.drop_table("story_team")
    op.drop_column("update", "return_note")
    op.drop_column("update", "version")
    op.drop_column("update", "state")
    if op.get_bind().dialect.name == "postgresql":
        sa.Enum(name="updatestate").drop(op.get_bind(), checkfirst=True)
