"""Staff outbox: each staff message rendered per target at claim time, delivered (and retried) from
the store, so a crash or a failing target never loses a message.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_outbox",
        sa.Column("claim", sa.Text, primary_key=True),
        sa.Column("target", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("portal", sa.Text),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_try", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("possible_duplicate", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sent_at", sa.Float),
        sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')"),
    )
    op.create_index("staff_outbox_due", "staff_outbox", ["state", "next_try"])


def downgrade() -> None:
    op.drop_index("staff_outbox_due", "staff_outbox")
    op.drop_table("staff_outbox")
