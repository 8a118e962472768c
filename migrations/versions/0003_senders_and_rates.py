"""senders and rates: the sender registry and one shared MPS schedule per origination identity

Several senders (on several hosts) can share one PostgreSQL ledger: `senders` holds each one's
heartbeat on the database's clock, `rate_limits` one GCRA schedule per origination identity.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("rate_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_senders_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_senders")),
    )
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.create_index("ix_senders_campaign_state", ["campaign_id", "state"], unique=False)
        batch_op.create_index(
            "ix_senders_state_heartbeat", ["state", "heartbeat_at"], unique=False
        )

    op.create_table(
        "rate_limits",
        sa.Column("identity", sa.String(length=256), nullable=False),
        sa.Column("mps", sa.Float(), nullable=False),
        sa.Column("tat", sa.Float(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("senders", schema=None) as batch_op:
        batch_op.drop_index("ix_senders_state_heartbeat")
        batch_op.drop_index("ix_senders_campaign_state")
    op.drop_table("senders")
