"""Revision 0008 (after 0007, 2026-12-03): a story's free tags (issue 14), apart from
its categories: Open Graph's ``article:tag`` and the JSON-LD ``keywords``. One new
table on both databases; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "story_tag",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["story.id"]),
        sa.PrimaryKeyConstraint("story_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("story_tag")
