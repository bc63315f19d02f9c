"""The one durable store: failover state, action state, overrides, maintenance windows, the
append-only event log, exactly-once claims, and booking requests.

- ``Store``: every query, synchronous (the CLI);
- ``AsyncStore``: the same methods for the event loop (one writer thread, a few reader threads);
- ``ServiceLock``: one ``portalguard run`` per store;
- ``schema`` (SQLAlchemy Core tables) and ``migrations`` (Alembic, plus the pre-Alembic steps).

The service and the CLI open the same SQLite file (WAL); each call is its own short transaction.
"""

from failover.store.aio import AsyncStore, describe_error
from failover.store.lock import ServiceLock, StoreInUseError
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
    Maintenance,
    OutboxRow,
    Override,
    PortalRow,
    StaffAccount,
    StoreError,
)
from failover.store.schema import SCHEMA_VERSION
from failover.store.sync import Store

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
    "EndpointRow",
    "Event",
    "Maintenance",
    "OutboxRow",
    "Override",
    "PortalRow",
    "ServiceLock",
    "StaffAccount",
    "Store",
    "StoreError",
    "StoreInUseError",
    "describe_error",
]
