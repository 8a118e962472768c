"""the pending-groups index holds `state` too, so grouping the pending reads the index alone

`status`, `estimate`, `import` and the sender group the pending recipients by (zone key, country)
with ix_recipients_pending_groups. SQLite read each of those rows from the table as well, because
the query names `state` (the index's own condition) and the index did not hold it: on a million
pending recipients 0.25 s, and 0.19 s with `state` in the index
(sqlite3 on the ledger `python -m bench import` builds).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_recipients_pending_groups"
_PENDING = sa.text("state = 'pending'")


def _create(columns: list[str]) -> None:
    op.create_index(
        _NAME,
        "recipients",
        columns,
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def upgrade() -> None:
    op.drop_index(_NAME, table_name="recipients")
    _create(["campaign_id", "tz_key", "country", "parts", "state"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="recipients")
    _create(["campaign_id", "tz_key", "country", "parts"])
