"""Appointment mirror: the portal's upcoming appointments, patient fields sealed, and each portal's
last sync. Booking requests keep their table; their ``data`` is sealed in place (by the store, not
here: it needs the key) once a data key is set.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False),
        sa.Column("menu", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=""),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("vanished_at", sa.Float),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("synced_at", sa.Float, nullable=False),
    )
    op.create_index("appointments_portal_day", "appointments", ["portal", "day"])
    op.create_index("appointments_start", "appointments", ["start"])
    op.create_table(
        "mirror_sync",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("last_success", sa.Float),
        sa.Column("last_attempt", sa.Float),
        sa.Column("last_error_kind", sa.Text),
        sa.Column("last_error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("mirror_sync")
    op.drop_index("appointments_start", "appointments")
    op.drop_index("appointments_portal_day", "appointments")
    op.drop_table("appointments")
