"""The drill record in the store: written by ``portalguard drill``, shown by ``portalguard status``.

Apart from the drill command so that ``status`` does not import what a drill needs (httpx, the actions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from failover.store.reads import StoreReads

if TYPE_CHECKING:
    from failover.store import Store


def last_drill(store: StoreReads, pid: str) -> dict[str, Any] | None:
    """``{at, ok, last_ok_at}`` of PORTAL's last drill, or None if it never had one."""
    record = store.value(f"drill:{pid}")
    if not record:
        return None
    # Records written before last_ok_at existed: a passed drill is its own last pass.
    last_ok = record.get("last_ok_at", record["at"] if record["ok"] else None)
    return {"at": record["at"], "ok": record["ok"], "last_ok_at": last_ok}


def record_drill(store: Store, pid: str, ok: bool, now: float) -> None:
    """Keep the last drill and the last *passed* one (`status` shows both)."""
    from failover.drill import next_record

    store.set_value(f"drill:{pid}", next_record(store.value(f"drill:{pid}"), ok, now))
