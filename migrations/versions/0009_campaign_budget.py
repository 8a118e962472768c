"""a budget stored on the campaign, covering all its runs (`create`/`edit --budget`)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): instant on both databases. US dollars as exact
    # decimal text, like max_price; NULL: no campaign budget.
    op.add_column("campaigns", sa.Column("budget", sa.String(16), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35 and later has it): batch mode would rebuild the table, and
    # on SQLite dropping `campaigns` to rebuild it cascades to every recipient.
    op.drop_column("campaigns", "budget")
