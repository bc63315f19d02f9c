"""Staff accounts of the staff console: name, role, the password's KDF hash, and the login throttle.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_login", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("role IN ('operator', 'viewer')"),
    )


def downgrade() -> None:
    op.drop_table("staff_accounts")
