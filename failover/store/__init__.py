"""The one durable store: failover state, action state, overrides, maintenance windows, the
append-only event log, exactly-once claims, and booking requests.

- ``Store``: every query, synchronous (the CLI);
- ``AsyncStore``: the same methods for the event loop (one writer thread, a few reader threads);
- ``service_lock``: one ``portalguard run`` per store (a file lock, or an advisory lock on PostgreSQL);
- ``schema`` (SQLAlchemy Core tables) and ``migrations`` (Alembic, plus the pre-Alembic steps).

The service and the CLI open the same SQLite file (WAL); each call is its own short transaction.
"""

from failover.store.aio import AsyncStore, describe_error
from failover.store.lock import DatabaseServiceLock, ServiceLock, StoreInUseError, service_lock
from failover.store.rows import (
    MAINTENANCE_MODES,
    OUTBOX_STATES,
    OVERRIDE_MODES,
    REQUEST_STATUSES,
    ActionRow,
    BookingRequest,
    DataKeyError,
    EndpointRow,
    Event,
    Maintenance,
    OutboxRow,
    Override,
    PortalRow,
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
    "ActionRow",
    "AsyncStore",
    "BookingRequest",
    "DataKeyError",
    "DatabaseServiceLock",
    "EndpointRow",
    "Event",
    "Maintenance",
    "OutboxRow",
    "Override",
    "PortalRow",
    "ServiceLock",
    "Store",
    "StoreError",
    "StoreInUseError",
    "describe_error",
    "service_lock",
]
