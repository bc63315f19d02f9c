"""Every schema change in one place: Alembic revisions under ``versions/``, run from code (no
alembic.ini at runtime), plus the frozen pre-Alembic steps in ``legacy.py``.

Opening a store brings it to the newest revision, in one write transaction (all or nothing):

- new store (no tables): ``upgrade head``;
- store of an older portalguard (``PRAGMA user_version`` 1–3, no ``alembic_version``): the legacy
  SQL up to version 3, ``stamp`` the baseline revision 0003 (which is exactly version 3), then
  ``upgrade head``;
- store at a revision this code does not know: ``StoreError`` asking to upgrade portalguard.

A store already at the newest revision is only read (no write lock, no Alembic import): the CLI
starts fast and works on a store whose write lock another process holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from failover.store.engine import WRITE
from failover.store.migrations.legacy import LEGACY_VERSION, upgrade_to_v3
from failover.store.revision import HEAD_REVISION, SCHEMA_VERSION, VERSION_TABLE
from failover.store.rows import StoreError
from failover.store.schema import LEGACY_READABLE_VERSION, SEALED_LEGACY_VERSION

if TYPE_CHECKING:
    from alembic.config import Config

BASELINE_REVISION = "0003"  # = legacy user_version 3


@dataclass(frozen=True, slots=True)
class SchemaState:
    revision: str | None  # Alembic's, None before Alembic ever ran on this store
    legacy_version: int  # PRAGMA user_version (SQLite) when revision is None; 0: a new store


def read_state(conn: Connection) -> SchemaState:
    if inspect(conn).has_table(VERSION_TABLE):
        revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        return SchemaState(revision, 0)
    legacy = conn.exec_driver_sql("PRAGMA user_version").scalar() if conn.dialect.name == "sqlite" else 0
    return SchemaState(None, int(legacy or 0))


def schema_number(revision: str | None) -> int:
    return int(revision) if revision and revision.isdigit() else 0


def migrate(engine: Engine, path: str) -> None:
    """Bring the store to the newest revision (see the module docstring)."""
    with engine.connect() as conn:
        if _is_current(path, read_state(conn)):
            return
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            state = read_state(conn)  # again, under the write lock: another process may have migrated
            if not _is_current(path, state):
                _upgrade(conn, state)


def _is_current(path: str, state: SchemaState) -> bool:
    if state.revision == HEAD_REVISION:
        return True
    if state.revision is not None and state.revision not in _known_revisions():
        raise _too_new(path, state.revision)
    if state.revision is None and state.legacy_version > LEGACY_VERSION:
        raise _too_new(path, str(state.legacy_version))
    return False


def _too_new(path: str, found: str) -> StoreError:
    shown = int(found) if found.isdigit() else found
    return StoreError(
        f"store {path} has schema {shown}, newer than this portalguard ({SCHEMA_VERSION}): upgrade portalguard"
    )


def _upgrade(conn: Connection, state: SchemaState) -> None:
    from alembic import command

    config = alembic_config(conn)
    if state.revision is None and state.legacy_version > 0:
        upgrade_to_v3(conn, state.legacy_version)
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")
    if conn.dialect.name == "sqlite" and conn.exec_driver_sql("PRAGMA user_version").scalar() != SEALED_LEGACY_VERSION:
        # What a pre-Alembic portalguard checks: it refuses a store newer than its version 3 (and one
        # whose booking requests are sealed keeps saying so: see schema.SEALED_LEGACY_VERSION).
        conn.exec_driver_sql(f"PRAGMA user_version={LEGACY_READABLE_VERSION}")


def alembic_config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent).replace("%", "%%"))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
