"""the input row's cells and a note on each recipient, for the report that goes back to the CRM

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): instant on both databases, whatever the size.
    op.add_column("recipients", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("recipients", sa.Column("cells", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recipients") as batch:
        batch.drop_column("cells")
        batch.drop_column("note")
