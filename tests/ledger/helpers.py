"""Builders and readers for the direct ledger tests: written with the Ledger API or SQLAlchemy Core
only, so that the same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update

from campaign.domain import (
    AttemptOutcome,
    Campaign,
    CampaignSpec,
    Claim,
    RecipientState,
    Settlement,
    now,
)
from campaign.ledger import Ledger
from campaign.ledger.tables import attempts, campaigns, recipients, runs

S = RecipientState
# A result row of any width (SQLAlchemy 2.1's Row is generic over its column types).
DbRow = Row[*tuple[Any, ...]]
# The columns an import writes per recipient (campaign.importing.rows.LEDGER_COLUMNS).
ROW_COLUMNS = (
    "row",
    "raw_phone",
    "phone",
    "country",
    "fields",
    "state",
    "reason",
    "parts",
    "encoding",
)


def add_campaign(
    ledger: Ledger,
    name: str = "spring",
    *,
    pending: int = 5,
    also: Sequence[RecipientState] = (),
    parts: int = 1,
) -> Campaign:
    """A campaign with `pending` pending recipients, then one recipient in each state of `also`,
    written as one import (rows numbered from 1 in that order)."""
    campaign = ledger.create_campaign(
        CampaignSpec(name=name, template="Hi {first_name}", origination_identity="+12065550100")
    )
    row_states = [S.PENDING] * pending + list(also)
    rows = [_row(campaign.id, n, state, parts) for n, state in enumerate(row_states, start=1)]
    ledger.write_import(
        campaign.id,
        filename=f"{name}.csv",
        sha256=f"{campaign.id:064d}",
        phone_column="phone",
        columns=["phone", "first_name"],
        row_columns=ROW_COLUMNS,
        batches=iter([rows]),
        finish=lambda: (pending, 0, 0, []),
    )
    return campaign


def _row(campaign_id: int, n: int, state: RecipientState, parts: int) -> tuple[Any, ...]:
    phone = f"+1206{campaign_id:03d}{n:04d}"
    fields = json.dumps({"first_name": f"Person {n}"})
    return (n, phone, phone, "US", fields, state.value, None, parts, "GSM")


def pending_claims(ledger: Ledger, campaign: Campaign) -> list[Claim]:
    """Every pending recipient of the campaign as a claim candidate, in id order."""
    return ledger.next_pending(campaign.id, after_id=0, limit=1_000_000)


def start_run(ledger: Ledger, campaign: Campaign, *, dry_run: bool = False, pid: int = 4242) -> int:
    return ledger.start_run(
        campaign.id, pid=pid, host="test-host", dry_run=dry_run, mps=10.0, concurrency=4
    )


def recipient_rows(ledger: Ledger, campaign: Campaign) -> list[DbRow]:
    """The campaign's recipients (id, state, reason, attempts, message_id, updated_at), in id order."""
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                select(
                    recipients.c.id,
                    recipients.c.state,
                    recipients.c.reason,
                    recipients.c.attempts,
                    recipients.c.message_id,
                    recipients.c.updated_at,
                )
                .where(recipients.c.campaign_id == campaign.id)
                .order_by(recipients.c.id)
            ).all()
        )


def states(ledger: Ledger, campaign: Campaign) -> dict[int, str]:
    """Recipient id -> state."""
    return {r.id: r.state for r in recipient_rows(ledger, campaign)}


def ids_in(ledger: Ledger, campaign: Campaign, state: RecipientState) -> list[int]:
    return [i for i, s in states(ledger, campaign).items() if s == state.value]


def attempt_rows(ledger: Ledger, recipient_id: int) -> list[DbRow]:
    """Every attempt row of one recipient, oldest first."""
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                select(attempts)
                .where(attempts.c.recipient_id == recipient_id)
                .order_by(attempts.c.id)
            ).all()
        )


def all_attempts(ledger: Ledger, campaign: Campaign) -> list[DbRow]:
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                select(attempts)
                .where(attempts.c.campaign_id == campaign.id)
                .order_by(attempts.c.id)
            ).all()
        )


def lock_row(ledger: Ledger, campaign: Campaign) -> DbRow:
    """The campaign's sender lock columns."""
    with ledger.engine.connect() as conn:
        return conn.execute(
            select(
                campaigns.c.sender_token,
                campaigns.c.sender_pid,
                campaigns.c.sender_host,
                campaigns.c.sender_heartbeat,
            ).where(campaigns.c.id == campaign.id)
        ).one()


def age_heartbeat(ledger: Ledger, campaign: Campaign, by: timedelta) -> None:
    """Make the lock's last heartbeat `by` older than now (a sender gone silent)."""
    with ledger.engine.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign.id)
            .values(sender_heartbeat=now() - by)
        )


def run_row(ledger: Ledger, run_id: int) -> DbRow:
    with ledger.engine.connect() as conn:
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def sent(claim: Claim, message_id: str | None = None) -> Settlement:
    return Settlement(
        claim.recipient_id, AttemptOutcome.SENT, S.SENT, message_id or f"mid-{claim.recipient_id}"
    )


def back_to_pending(claim: Claim, outcome: AttemptOutcome = AttemptOutcome.THROTTLED) -> Settlement:
    """A call that certainly did not go out (throttled, or an error before sending)."""
    return Settlement(claim.recipient_id, outcome, S.PENDING, None, "ThrottlingException")


def between(value: datetime | None, start: datetime, end: datetime) -> bool:
    return value is not None and start <= value <= end
