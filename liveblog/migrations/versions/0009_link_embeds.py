"""Revision 0009 (after 0008, 2026-12-03): link embeds (issue 16). A table of fetched
links, one row per address, and each update's snapshot of the embeds in its body.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveblog.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_embed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("provider_name", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("author_name", sa.String(length=300), nullable=True),
        sa.Column("thumbnail_url", sa.String(length=2000), nullable=True),
        sa.Column("thumbnail_width", sa.Integer(), nullable=True),
        sa.Column("thumbnail_height", sa.Integer(), nullable=True),
        sa.Column("frame_html", sa.Text(), nullable=True),
        sa.Column("frame_origins", sa.String(length=2000), nullable=True),
        sa.Column("ratio", sa.String(length=20), nullable=True),
        sa.Column("problem", sa.String(length=300), nullable=True),
        sa.Column("fetched_at", liveblog.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url_hash"),
        sa.UniqueConstraint("key"),
    )
    op.add_column("update", sa.Column("embeds", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("update", "embeds")
    op.drop_table("link_embed")
