"""Revision 0005 (after 0004, 2026-12-03): readers' order by the moment of publishing,
scheduled updates, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveblog.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not read from the models: what this revision creates must not change
# when a later revision adds a value.
AUDIT_ACTIONS = (
    "created",
    "edited",
    "submitted",
    "published",
    "returned",
    "rejected",
    "scheduled",
    "unscheduled",
    "deleted",
    "pinned",
    "unpinned",
    "story_created",
    "story_changed",
    "team_added",
    "team_removed",
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # A new value of the state type (SQLite keeps enums as plain strings, and
        # 'scheduled' fits the declared VARCHAR(9)). Usable once this transaction
        # commits, which is all this revision needs: no row is scheduled yet.
        op.execute("ALTER TYPE updatestate ADD VALUE IF NOT EXISTS 'scheduled'")
    op.add_column("update", sa.Column("published_seq", sa.Integer(), nullable=True))
    op.add_column(
        "update",
        sa.Column("publish_at", liveblog.models.UTCDateTime(timezone=True), nullable=True),
    )
    # Every published update so far was published by its first "update" event: the
    # order live readers saw. (The log is never pruned; a published update without
    # such an event, which the app never writes, goes first in time: 0.)
    op.execute(
        'UPDATE "update" SET published_seq = coalesce(('
        "SELECT min(story_event.seq) FROM story_event "
        "WHERE story_event.update_id = \"update\".id AND story_event.kind = 'update'"
        "), 0) WHERE state = 'published'"
    )
    op.create_index(
        "ix_update_story_id_published_seq", "update", ["story_id", "published_seq"], unique=False
    )
    op.create_index("ix_update_state_publish_at", "update", ["state", "publish_at"], unique=False)
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.Enum(*AUDIT_ACTIONS, name="auditaction"), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", liveblog.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.ForeignKeyConstraint(["update_id"], ["update.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entry_story_id_id", "audit_entry", ["story_id", "id"], unique=False)


def downgrade() -> None:
    # Scheduled updates go back to being drafts; on PostgreSQL the state type keeps
    # 'scheduled' (a value cannot be dropped from an enum type). On SQLite DROP COLUMN
    # needs SQLite 3.35 (2021) or later (see 0003).
    op.execute("UPDATE \"update\" SET state = 'draft' WHERE state = 'scheduled'")
    op.drop_index("ix_audit_entry_story_id_id", table_name="audit_entry")
    op.drop_table("audit_entry")
    if op.get_bind().dialect.name == "postgresql":
        sa.Enum(name="auditaction").drop(op.get_bind(), checkfirst=True)
    op.drop_index("ix_update_state_publish_at", table_name="update")
    op.drop_index("ix_update_story_id_published_seq", table_name="update")
    op.drop_column("update", "publish_at")
    op.drop_column("update", "published_seq")
