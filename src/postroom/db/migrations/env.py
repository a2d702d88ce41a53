"""Alembic environment: migrations run on the connection handed over by `postroom.db.migrate`."""

from __future__ import annotations

from alembic import context

from postroom.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `postroom migrate`, not the alembic command")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
