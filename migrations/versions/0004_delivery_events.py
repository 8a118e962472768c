"""delivery events: events, events_aside, delivery beside the recipient's state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) is instant on both databases, even under a million
    # recipients; batch mode would copy the whole table on SQLite.
    op.add_column("recipients", sa.Column("delivery", sa.String(length=16), nullable=True))
    op.add_column("recipients", sa.Column("delivery_reason", sa.Text(), nullable=True))
    op.add_column(
        "recipients", sa.Column("delivery_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("recipients", sa.Column("charged", sa.Float(), nullable=True))
    op.create_index(
        "ix_recipients_message_id",
        "recipients",
        ["message_id"],
        unique=False,
        sqlite_where=sa.text("message_id IS NOT NULL"),
        postgresql_where=sa.text("message_id IS NOT NULL"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_ts", sa.BigInteger(), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("carrier_fee", sa.Float(), nullable=True),
        sa.Column("iso_country", sa.String(length=2), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_events_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.id"],
            name=op.f("fk_events_recipient_id_recipients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "event_ts", "message_id", "event_type", name=op.f("uq_events_event_ts")
        ),
    )
    op.create_index("ix_events_recipient", "events", ["recipient_id", "event_ts"], unique=False)
    op.create_table(
        "events_aside",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("event_ts", sa.BigInteger(), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_aside")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_events_aside_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("events_aside")
    op.drop_index("ix_events_recipient", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_recipients_message_id", table_name="recipients")
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_column("charged")
        batch_op.drop_column("delivery_at")
        batch_op.drop_column("delivery_reason")
        batch_op.drop_column("delivery")
