"""claim owner: the sender holding each `sending` claim, so several senders can share a campaign

`recipients.sender_id` is the registered sender (campaign.ledger.senders) that claimed the row: outcomes
are written only while the row is still `sending` and still that sender's (fencing), and when a sender
is declared lost only ITS `sending` rows become `unknown`. A small partial index finds them: it holds
the rows in flight only (at most `--concurrency` per sender). Rows claimed before this revision keep a
NULL owner (recovered as before: every `sending` row of a campaign nobody holds).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): instant on both databases, whatever the size.
    op.add_column("recipients", sa.Column("sender_id", sa.Integer(), nullable=True))
    op.create_index(
        "ix_recipients_sending_owner",
        "recipients",
        ["sender_id"],
        unique=False,
        sqlite_where=sa.text("state = 'sending'"),
        postgresql_where=sa.text("state = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_recipients_sending_owner", table_name="recipients")
    with op.batch_alter_table("recipients") as batch:
        batch.drop_column("sender_id")
