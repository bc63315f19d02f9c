"""The mirror's mail source: each appointment's last mail time, each mailbox folder's UIDVALIDITY and
last UID, and the mails no template could read (their subject sealed, by the store).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("appointments", sa.Column("mail_at", sa.Float))
    op.create_table(
        "mirror_mail_state",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("folder", sa.Text, primary_key=True),
        sa.Column("uidvalidity", sa.Integer),
        sa.Column("last_uid", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_success", sa.Float),
        sa.Column("last_attempt", sa.Float),
        sa.Column("last_error_kind", sa.Text),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "mirror_mail_unread",
        sa.Column("portal", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_index("mirror_mail_unread_received", "mirror_mail_unread", ["received"])


def downgrade() -> None:
    op.drop_index("mirror_mail_unread_received", "mirror_mail_unread")
    op.drop_table("mirror_mail_unread")
    op.drop_table("mirror_mail_state")
    with op.batch_alter_table("appointments") as batch:
        batch.drop_column("mail_at")
