"""Revision 0003 (after 0002, 2026-11-28): who created each story."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: stories created before this revision have no recorded creator.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in place. Batch mode would copy the
        # table instead, and dropping the old story table fails while updates refer to it.
        op.execute('ALTER TABLE story ADD COLUMN created_by_id INTEGER REFERENCES "user" (id)')
    else:
        op.add_column("story", sa.Column("created_by_id", sa.Integer(), nullable=True))
        op.create_foreign_key(None, "story", "user", ["created_by_id"], ["id"])


def downgrade() -> None:
    # On SQLite this is ALTER TABLE ... DROP COLUMN, which needs SQLite 3.35 (2021) or
    # later; older ones refuse it, and the table copy batch mode would make fails as above.
    op.drop_column("story", "created_by_id")
