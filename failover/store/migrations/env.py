"""Alembic's environment: run by ``failover.store.migrations.migrate`` with the store's connection
in ``config.attributes["connection"]``, already inside the caller's write transaction (so the
whole upgrade commits or rolls back as one). A developer may also point ``sqlalchemy.url`` at a
scratch store to autogenerate a revision against ``schema.metadata``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from failover.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE cannot do most changes
        transactional_ddl=True,  # our BEGIN covers DDL on SQLite too (see engine.py)
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as own:
        _run(own)


_main()
