"""Alembic environment. Migrations run on a connection handed in by ``liveblog.schema``
(the app's own async engine, bridged with ``run_sync``), so the CLI, the server's start-up
check and the tests all migrate the same way, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from liveblog import models, search  # noqa: F401  (models registers the tables)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through 'liveblog db upgrade', not the alembic command")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
    # The search index (0006) is made by hand and not in the models: autogenerate must
    # leave it alone (liveblog/search.py, include_name).
    include_name=search.include_name,
)
with context.begin_transaction():
    context.run_migrations()
