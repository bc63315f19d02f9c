"""``portalguard store migrate``: copy a whole store into an empty one — a single instance's SQLite
file into PostgreSQL — table by table, verifying every table's row count.

Both stores are opened (so migrated to the same schema revision) and locked against a running
service first: a copy taken while a service writes would miss what it writes meanwhile. Rows go
over as stored, sealed patient data included (the same ``data_key`` reads them on the other side:
the seal is bound to the row, whose keys are kept). A target that already holds data is refused
unless ``replace`` (it is emptied first, in the same transaction as the copy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, Table, delete, func, insert, select, text

from failover.store import schema as t
from failover.store.rows import StoreError
from failover.store.sync import Store

BATCH = 1000


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


# Who runs where, and who leads, now: the instances that run on the target write their own.
RUNTIME_TABLES = frozenset({"sites", "site_verdicts", "leader_lease"})


def tables() -> list[Table]:
    """Every table of the schema with data worth keeping, parents before children (Alembic's own
    table is not data, nor are the sites' heartbeats and the leader lease)."""
    return [tb for tb in t.metadata.sorted_tables if tb.name not in RUNTIME_TABLES]


def count(store: Store, table: Table) -> int:
    with store._read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def copy_store(
    source: Store, target: Store, *, replace: bool = False, progress: Callable[[Copied], None] | None = None
) -> list[Copied]:
    """Copy every row of ``source`` into ``target``; returns the count per table (verified equal)."""
    if source.schema_version() != target.schema_version():
        raise StoreError(
            f"store {source.path} is at schema {source.schema_version()}, {target.path} at "
            f"{target.schema_version()}: open both with this portalguard first"
        )
    held = [tb.name for tb in tables() if count(target, tb)]
    if held and not replace:
        raise StoreError(
            f"store {target.path} already holds data ({', '.join(held)}): copy into an empty database, "
            "or add --replace to empty it first"
        )
    done: list[Copied] = []
    with target._write() as out:
        if replace:
            for tb in reversed(tables()):
                out.execute(delete(tb))
        for tb in tables():
            copied = _copy_table(source, out, tb)
            done.append(Copied(tb.name, copied))
            if progress is not None:
                progress(done[-1])
        _advance_sequences(out)
    _verify(source, target, done)
    return done


def _copy_table(source: Store, out: object, table: Table) -> int:
    copied = 0
    key = list(table.primary_key.columns)
    with source._read() as conn:
        result = conn.execution_options(yield_per=BATCH).execute(select(table).order_by(*key))
        for chunk in result.partitions(BATCH):
            out.execute(insert(table), [dict(r._mapping) for r in chunk])  # type: ignore[attr-defined]
            copied += len(chunk)
    return copied


def _advance_sequences(out: object) -> None:
    """PostgreSQL's id sequences start after the copied ids (SQLite takes max(id) + 1 by itself)."""
    if out.dialect.name != "postgresql":  # type: ignore[attr-defined]
        return
    for table in tables():
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and isinstance(keys[0].type, Integer):  # the numbered ones: events, requests, …
            name, column = table.name, keys[0].name
            out.execute(  # type: ignore[attr-defined]
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                    f"COALESCE((SELECT MAX({column}) FROM {name}), 0) + 1, false)"
                )
            )


def _verify(source: Store, target: Store, done: list[Copied]) -> None:
    wrong = [
        f"{c.table}: {count(source, tb)} in {source.path}, {count(target, tb)} in {target.path}"
        for c, tb in zip(done, tables(), strict=True)
        if count(source, tb) != count(target, tb)
    ]
    if wrong:
        raise StoreError("the copy does not match (was a service writing?): " + "; ".join(wrong))
