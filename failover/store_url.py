"""Where the store is: a SQLite file (the embedded default) or a PostgreSQL database, told apart by
the ``store:`` value's scheme. Apart from ``failover.store`` so that the config can tell without
importing SQLAlchemy (every CLI command loads the config)."""

from __future__ import annotations

from pathlib import Path

PG_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")


def is_database_url(location: str | Path) -> bool:
    """Whether ``store:`` names a PostgreSQL database rather than a SQLite file."""
    return str(location).startswith(PG_SCHEMES)
