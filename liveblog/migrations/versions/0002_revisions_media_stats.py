"""update revisions, update images, story reader stats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import liveblog.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "update_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=True),
        sa.Column("headline", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("key_event", sa.Boolean(), nullable=False),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("image_alt", sa.String(length=300), nullable=True),
        sa.Column("image_caption", sa.String(length=300), nullable=True),
        sa.Column("image_credit", sa.String(length=300), nullable=True),
        sa.Column("created_at", liveblog.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["update_id"], ["update.id"]),
        sa.ForeignKeyConstraint(["editor_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("update_revision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_update_revision_update_id"), ["update_id"], unique=False
        )
    with op.batch_alter_table("update", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("image_alt", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("image_caption", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("image_credit", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("image_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_height", sa.Integer(), nullable=True))
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("page_views", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("peak_readers", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("story", schema=None) as batch_op:
        batch_op.drop_column("peak_readers")
        batch_op.drop_column("page_views")
    with op.batch_alter_table("update", schema=None) as batch_op:
        for column in ("image_height", "image_width", "image_credit", "image_caption"):
            batch_op.drop_column(column)
        batch_op.drop_column("image_alt")
        batch_op.drop_column("image_url")
    with op.batch_alter_table("update_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_update_revision_update_id"))
    op.drop_table("update_revision")
