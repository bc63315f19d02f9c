"""The one durable store: failover state, action state, overrides, maintenance windows, the
append-only event log, exactly-once claims, and booking requests.

- ``Store``: every query, synchronous (the CLI);
- ``ReadOnlyStore``: the reads ``status`` makes (``reads.py``, shared with ``Store``) over sqlite3 alone;
- ``AsyncStore``: the same methods for the event loop (one writer thread, a few reader threads);
- ``service_lock``: one ``portalguard run`` per store (a file lock, or an advisory lock on PostgreSQL);
- ``schema`` (SQLAlchemy Core tables) and ``migrations`` (Alembic, plus the pre-Alembic steps).

The service and the CLI open the same SQLite file (WAL); each call is its own short transaction.
"""

import importlib
from typing import TYPE_CHECKING, Any

from failover.store.revision import SCHEMA_VERSION
from failover.store.rows import (
    MAINTENANCE_MODES,
    OUTBOX_STATES,
    OVERRIDE_MODES,
    REQUEST_STATUSES,
    STAFF_ROLES,
    ActionRow,
    BookingRequest,
    DataKeyError,
    EndpointRow,
    Event,
    FencedOut,
    Lease,
    Maintenance,
    OutboxRow,
    Override,
    PortalRow,
    SiteRow,
    SiteVerdict,
    StaffAccount,
    StoreError,
)

if TYPE_CHECKING:
    from failover.store.aio import AsyncStore, describe_error
    from failover.store.lock import DatabaseServiceLock, ServiceLock, StoreInUseError, service_lock
    from failover.store.readonly import ReadOnlyStore
    from failover.store.sites import SiteBeat
    from failover.store.sync import Store

# Imported on first use (PEP 562): ``ReadOnlyStore`` and the rows load without SQLAlchemy.
_LAZY = {
    "AsyncStore": "failover.store.aio",
    "describe_error": "failover.store.aio",
    "ReadOnlyStore": "failover.store.readonly",
    "DatabaseServiceLock": "failover.store.lock",
    "ServiceLock": "failover.store.lock",
    "service_lock": "failover.store.lock",
    "StoreInUseError": "failover.store.lock",
    "Store": "failover.store.sync",
    "SiteBeat": "failover.store.sites",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "MAINTENANCE_MODES",
    "OUTBOX_STATES",
    "OVERRIDE_MODES",
    "REQUEST_STATUSES",
    "SCHEMA_VERSION",
    "STAFF_ROLES",
    "ActionRow",
    "AsyncStore",
    "BookingRequest",
    "DataKeyError",
    "DatabaseServiceLock",
    "EndpointRow",
    "Event",
    "FencedOut",
    "Lease",
    "Maintenance",
    "OutboxRow",
    "Override",
    "PortalRow",
    "ReadOnlyStore",
    "ServiceLock",
    "SiteBeat",
    "SiteRow",
    "SiteVerdict",
    "StaffAccount",
    "Store",
    "StoreError",
    "StoreInUseError",
    "describe_error",
    "service_lock",
]
