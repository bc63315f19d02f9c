"""Baseline: exactly the schema the pre-Alembic portalguard left at ``PRAGMA user_version`` 3.

A new store is built by this revision; a store made by an older portalguard is brought to version
3 by ``legacy.py`` and stamped with this revision instead. Frozen: later changes are new revisions.

Revision ID: 0003
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_state",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("failover", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("incident", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("since", sa.Float),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("verdict", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("verdict_since", sa.Float),
        sa.Column("page_on", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outage_since", sa.Float),
        sa.Column("outage_reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "action_state",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("action", sa.Text, primary_key=True),
        sa.Column("desired", sa.Text, nullable=False, server_default="off"),
        sa.Column("observed", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("last_error", sa.Text),
        sa.Column("permanent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("on_since", sa.Float),
        sa.Column("updated", sa.Float),
        sa.Column("failing_since", sa.Float),
    )
    op.create_table(
        "overrides",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("expires", sa.Float),
        sa.CheckConstraint("mode IN ('on', 'off')"),
    )
    op.create_table(
        "maintenance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal", sa.Text, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.Float, nullable=False),
        sa.CheckConstraint("mode IN ('suppress', 'failover')"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("portal", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("action", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sqlite_autoincrement=True,
    )
    op.create_index("events_portal_ts", "events", ["portal", "ts"])
    op.create_table(
        "claims",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("ts", sa.Float, nullable=False),
    )
    op.create_table(
        "booking_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="new"),
        sa.Column("updated", sa.Float),
        sa.Column("data", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('new', 'contacted', 'booked', 'cancelled')"),
        sqlite_autoincrement=True,
    )
    op.create_index("booking_requests_created", "booking_requests", ["created"])
    op.create_table(
        "endpoint_state",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("endpoint", sa.Text, primary_key=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error_kind", sa.Text),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("checked", sa.Float, nullable=False),
    )
    op.create_table(
        "kv",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup of the store instead")
