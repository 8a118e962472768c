"""sending windows, deadlines, frequency caps, time zones per recipient, the do-not-send list

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default) is instant on both databases, even under a million
    # recipients; batch mode would copy the whole table on SQLite. Recipients imported before this
    # revision have no time zone (NULL: unknown): a window holds them until the user decides.
    op.add_column("campaigns", sa.Column("window", sa.Text(), nullable=True))
    op.add_column("campaigns", sa.Column("days", sa.String(length=40), nullable=True))
    op.add_column("campaigns", sa.Column("deadline", sa.DateTime(timezone=True), nullable=True))
    op.add_column("campaigns", sa.Column("max_per_recipient", sa.Integer(), nullable=True))
    op.add_column("campaigns", sa.Column("per_hours", sa.Integer(), nullable=True))
    op.add_column("recipients", sa.Column("tz_key", sa.Text(), nullable=True))
    op.add_column("recipients", sa.Column("tz_source", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_recipients_pending_groups",
        "recipients",
        ["campaign_id", "tz_key", "country", "parts"],
        unique=False,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_recipients_claimed_phone",
        "recipients",
        ["phone"],
        unique=False,
        sqlite_where=sa.text("attempts > 0"),
        postgresql_where=sa.text("attempts > 0"),
    )
    op.create_table(
        "suppressions",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_suppressions")),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_recipients_claimed_phone", table_name="recipients")
    op.drop_index("ix_recipients_pending_groups", table_name="recipients")
    # Plain DROP COLUMN (SQLite 3.35 and later has it): batch mode would rebuild the tables, and
    # on SQLite dropping `campaigns` to rebuild it cascades to every recipient.
    for column in ("tz_source", "tz_key"):
        op.drop_column("recipients", column)
    for column in ("per_hours", "max_per_recipient", "deadline", "days", "window"):
        op.drop_column("campaigns", column)
