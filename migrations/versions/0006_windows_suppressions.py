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
    # recipients; batch mode would copy the whole table on SQLite.
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
    _decide_pending_zones(op.get_bind())


_CHUNK = 10_000


def _decide_pending_zones(conn: sa.Connection) -> None:
    """The time zones of the recipients still pending, decided as an import decides them now:
    without them the default window (every PROMOTIONAL campaign has one) would hold every
    recipient imported before this revision, and importing the file again adds nobody. Costs
    about 10 us a recipient. Rows that are no longer pending keep NULL: they will never be sent.
    The campaign code is loaded here, not at the top: only this upgrade needs it."""
    from campaign.audience.gate import held_reason
    from campaign.audience.windows import default_policy
    from campaign.domain import now
    from campaign.phones.normalize import Normalizer
    from campaign.phones.timezones import TimeZoneResolver

    normalizer = Normalizer(None, allow_non_mobile=True)
    resolver = TimeZoneResolver()
    at = now()
    select = sa.text(
        "SELECT r.id, r.phone, r.country, c.message_type FROM recipients AS r "
        "JOIN campaigns AS c ON c.id = r.campaign_id WHERE r.state = 'pending' "
        "AND r.phone IS NOT NULL AND r.id > :after ORDER BY r.id LIMIT :chunk"
    )
    update = sa.text(
        "UPDATE recipients SET tz_key = :key, tz_source = :source, "
        "reason = CASE WHEN reason IS NULL THEN :held ELSE reason END WHERE id = :id"
    )
    after = 0
    while rows := conn.execute(select, {"after": after, "chunk": _CHUNK}).all():
        after = rows[-1].id
        changes = []
        for row in rows:
            phone = normalizer.normalize(row.phone)
            zones = resolver.for_number(row.phone, phone.country, phone.number_type)
            policy = default_policy(row.message_type)
            held = held_reason(zones.key, policy, row.country, at, zones.note)
            changes.append({"key": zones.key, "source": zones.source, "held": held, "id": row.id})
        conn.execute(update, changes)


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
