"""Ledger rows -> the value types of campaign.domain, for the queries of more than one concern."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from campaign.domain import ALL_STATES, Claim, StateCounts
from campaign.ledger.tables import recipients

# What a Claim is built from (see claim_from_row): the send path and the dry-run sample read the same.
CLAIM_COLUMNS = (
    recipients.c.id,
    recipients.c.phone,
    recipients.c.country,
    recipients.c.fields,
    recipients.c.parts,
)


def claim_from_row(row: Any) -> Claim:
    return Claim(
        row.id,
        row.phone,
        row.country,
        json.loads(row.fields) if row.fields else {},
        int(row.parts or 1),
    )


def full_counts(counts: Mapping[str, int], parts: Mapping[str, int]) -> StateCounts:
    """Counts and parts per state, with every state present (0 when no recipient is in it)."""
    return StateCounts(
        counts={s: int(counts.get(s, 0)) for s in ALL_STATES},
        parts={s: int(parts.get(s, 0)) for s in ALL_STATES},
    )
