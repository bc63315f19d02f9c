"""``INSERT … ON CONFLICT`` for the backend in use: SQLite and PostgreSQL spell it the same way, but
SQLAlchemy builds it from each dialect's own ``insert``; nothing else in the store needs to know."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, CursorResult, Table


def _dialect_insert(conn: Connection, table: Table) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    if name == "postgresql":  # imported only when used: every CLI command imports the store
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    raise NotImplementedError(f"the store has no upsert for the {name} database")


def _key_columns(table: Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def upsert(conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
    """Insert the row, or update every given column of the row with the same primary key.

    Unlike ``INSERT OR REPLACE`` this updates in place: columns not given keep their value."""
    keys = _key_columns(table)
    statement = _dialect_insert(conn, table).values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed))


def insert_if_absent(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """Insert the row unless one with its primary key exists; True if this call inserted it."""
    keys = _key_columns(table)
    statement = _dialect_insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=keys)
    if conn.dialect.name == "postgresql":  # psycopg reports no rowcount here (-1): ask for the row back
        return conn.execute(statement.returning(table.c[keys[0]])).first() is not None
    result: CursorResult[Any] = conn.execute(statement)
    return result.rowcount == 1
