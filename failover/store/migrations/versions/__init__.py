"""Alembic revisions, one file each; ids are four-digit schema numbers ("0003", "0004", …)."""
