"""The store's tables as SQLAlchemy Core (no ORM): the schema the newest migration leaves.

Types are the portable ones, so the same definitions serve PostgreSQL later: unix times are
``Float`` (double precision), flags ``Boolean``, JSON documents ``Text``. A change here needs a new
revision under ``migrations/versions`` (tests compare this file with what the migrations build).
Column names are the row dataclasses' field names: rows are decoded by name, never by position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    false,
    text,
)

from failover.store.rows import MAINTENANCE_MODES, OUTBOX_STATES, OVERRIDE_MODES, REQUEST_STATUSES, STAFF_ROLES

# What is written to SQLite's ``PRAGMA user_version``, all a pre-Alembic portalguard reads (it refuses a
# store whose schema it does not know instead of misreading it): the newest legacy version that
# still reads this schema right. Revisions 0004 to 0008 only add tables (and columns) the old code never looks
# at, so going back one release keeps working (it would not deliver the staff outbox, only its own way) — until
# booking requests are sealed (a data key is set): the old code cannot read those, so the store then says
# ``SEALED_LEGACY_VERSION`` and the old code refuses it instead of failing on the first request.
LEGACY_READABLE_VERSION = 3
SEALED_LEGACY_VERSION = 5


class JSONText(TypeDecorator[Any]):
    """A JSON document in a TEXT column: Japanese text kept readable (``ensure_ascii=False``)."""

    impl = Text
    cache_ok = True

    def __init__(self, default: Callable[[Any], Any] | None = None) -> None:
        super().__init__()
        self.default = default  # events: anything unexpected (a Path, a datetime) is kept as its str()

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return json.dumps(value, ensure_ascii=False, default=self.default)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})")


metadata = MetaData()

portal_state = Table(
    "portal_state",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("failover", Boolean, nullable=False, server_default=false()),
    Column("incident", Integer, nullable=False, server_default=text("0")),  # the current/last failover episode
    Column("since", Float),  # when failover last changed
    Column("reason", Text, nullable=False, server_default=""),
    Column("verdict", Text, nullable=False, server_default="unknown"),
    Column("verdict_since", Float),
    Column("page_on", Boolean, nullable=False, server_default=false()),  # the fallback page switch
    Column("outage_since", Float),  # when the current/last failover went on
    Column("outage_reason", Text, nullable=False, server_default=""),
)

action_state = Table(
    "action_state",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("action", Text, primary_key=True),
    Column("desired", Text, nullable=False, server_default="off"),
    Column("observed", Text, nullable=False, server_default="unknown"),
    Column("last_error", Text),
    Column("permanent", Boolean, nullable=False, server_default=false()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt", Float, nullable=False, server_default=text("0")),
    Column("on_since", Float),
    Column("updated", Float),
    Column("failing_since", Float),  # first failure of the current streak
)

overrides = Table(
    "overrides",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("mode", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float),
    _one_of("mode", OVERRIDE_MODES),
)

# AUTOINCREMENT (SQLite): a number once handed out is never reused, even after its row is purged.
maintenance = Table(
    "maintenance",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal", Text, nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("mode", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created", Float, nullable=False),
    _one_of("mode", MAINTENANCE_MODES),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("portal", Text),
    Column("kind", Text, nullable=False),
    Column("action", Text),
    Column("detail", JSONText(default=str), nullable=False, server_default="{}"),
    Index("events_portal_ts", "portal", "ts"),
    sqlite_autoincrement=True,
)

claims = Table(
    "claims",
    metadata,
    Column("key", Text, primary_key=True),
    Column("ts", Float, nullable=False),
)

booking_requests = Table(
    "booking_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("portal", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("status", Text, nullable=False, server_default="new"),
    Column("updated", Float),
    # The form's fields: JSON, or (a data key set) JSON sealed with it (``failover.crypto``, "pg1:…").
    Column("data", Text, nullable=False),
    _one_of("status", REQUEST_STATUSES),
    Index("booking_requests_created", "created"),
    sqlite_autoincrement=True,
)

endpoint_state = Table(
    "endpoint_state",
    metadata,
    Column("portal", Text, primary_key=True),  # '' for canaries
    Column("endpoint", Text, primary_key=True),
    Column("ok", Boolean, nullable=False),
    Column("status", Integer),
    Column("error_kind", Text),
    Column("detail", Text, nullable=False, server_default=""),
    Column("since", Float, nullable=False),  # when this ok/kind began
    Column("checked", Float, nullable=False),  # last probe
)

kv = Table(
    "kv",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", JSONText(), nullable=False),
)

# Staff messages waiting for, or done with, delivery: one row per message and target (revision 0004).
staff_outbox = Table(
    "staff_outbox",
    metadata,
    Column("claim", Text, primary_key=True),
    Column("target", Text, primary_key=True),
    Column("topic", Text, nullable=False),
    Column("portal", Text),
    Column("language", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("state", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_try", Float, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("after", Text),
    Column("possible_duplicate", Boolean, nullable=False, server_default=false()),
    Column("sent_at", Float),
    _one_of("state", OUTBOX_STATES),
    Index("staff_outbox_due", "state", "next_try"),
)

# The appointment mirror (revision 0005): one row per appointment the portal listed, kept after it
# vanished (marked cancelled) until retention. name, phone and menu are always sealed (failover.crypto).
appointments = Table(
    "appointments",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("id", Text, primary_key=True),  # the portal's own reservation id
    Column("day", Text, nullable=False),  # the clinic's date, YYYY-MM-DD (the listing it was in)
    Column("start", Float, nullable=False),
    Column("end", Float),
    Column("name", Text, nullable=False),  # sealed
    Column("phone", Text, nullable=False),  # sealed
    Column("menu", Text, nullable=False),  # sealed
    Column("status", Text, nullable=False, server_default=""),
    Column("cancelled", Boolean, nullable=False, server_default=false()),
    Column("vanished_at", Float),
    Column("source", Text, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("synced_at", Float, nullable=False),
    Column("mail_at", Float),  # when the last booking mail applied to it arrived (revision 0006)
    Index("appointments_portal_day", "portal", "day"),
    Index("appointments_start", "start"),
)

# The last sync of each portal's mirror, for status, the metrics and the outage message.
mirror_sync = Table(
    "mirror_sync",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("last_success", Float),
    Column("last_attempt", Float),
    Column("last_error_kind", Text),
    Column("last_error", Text),
)

# The mirror's mail source (revision 0006): where the reading of each portal's mailbox folder stands.
# UIDVALIDITY and the last UID processed are written with each mail's effect, in one transaction.
mirror_mail_state = Table(
    "mirror_mail_state",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("folder", Text, primary_key=True),
    Column("uidvalidity", Integer),
    Column("last_uid", Integer, nullable=False, server_default=text("0")),
    Column("last_success", Float),
    Column("last_attempt", Float),
    Column("last_error_kind", Text),
    Column("last_error", Text),
)

# Mails from an allowed sender that no template could read: their date and subject for staff, once per
# mail (``key``: a hash of its Message-ID), however often the folder is read. The subject may hold a
# patient's name: always sealed.
mirror_mail_unread = Table(
    "mirror_mail_unread",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("received", Float, nullable=False),
    Column("subject", Text, nullable=False),  # sealed
    Column("reason", Text, nullable=False),
    Column("seen_at", Float, nullable=False),
    Index("mirror_mail_unread_received", "received"),
)

# Staff accounts of the staff console (revision 0007). ``password`` is the KDF's encoded hash (its
# parameters and salt in the string, so they can change), never the password. The login throttle
# (``failures``, ``next_login``) lives here, so a restart does not reset it.
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("password", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("next_login", Float, nullable=False, server_default=text("0")),
    _one_of("role", STAFF_ROLES),
)

# Several instances on one store (revision 0008). Every time here is the database's clock (one clock
# for every site: the lease never depends on two machines' clocks agreeing).
# Each instance's heartbeat, and how long it may be silent and still count (its own config says).
sites = Table(
    "sites",
    metadata,
    Column("site", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("stale_after", Float, nullable=False),
    Column("network_down", Boolean),
)

# Each site's own verdict of each portal, written with its heartbeat; the leader combines them.
site_verdicts = Table(
    "site_verdicts",
    metadata,
    Column("portal", Text, primary_key=True),
    Column("site", Text, primary_key=True),
    Column("health", Text, nullable=False),
    Column("since", Float, nullable=False),
    Column("seen", Float, nullable=False),
)

# The leader lease: one row. ``token`` grows by one with every new term (the fencing token): a write
# that makes an effect checks, in its own transaction, that its token is still the lease's.
leader_lease = Table(
    "leader_lease",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site", Text, nullable=False),
    Column("token", Integer, nullable=False),
    Column("expires", Float, nullable=False),
    Column("since", Float, nullable=False),
)
