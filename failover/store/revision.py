"""The store's schema revision: the number of the newest migration under ``migrations/versions``
(revision ids are "0003", "0004", …) and the table Alembic keeps a store's in. Apart from the
migrations, with no SQLAlchemy: ``ReadOnlyStore`` checks a store's revision with sqlite3 alone."""

SCHEMA_VERSION = 8
HEAD_REVISION = f"{SCHEMA_VERSION:04d}"
VERSION_TABLE = "alembic_version"
