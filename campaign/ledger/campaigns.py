"""Campaigns: create, read, list, update, and the rewrite of a campaign's message (`edit`'s recount)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from campaign.domain import Campaign, CampaignSpec, RecipientState, StateCounts, now
from campaign.ledger import sql
from campaign.ledger.errors import CampaignExists, CampaignNotFound
from campaign.ledger.rows import full_counts
from campaign.ledger.tables import campaigns, recipients, ucs2_characters

# Stored as JSON text (portable across SQLite and PostgreSQL).
_JSON_COLUMNS = ("context", "country_parameters")


class CampaignsMixin:
    engine: Engine

    def create_campaign(self, spec: CampaignSpec) -> Campaign:
        stamp = now()
        values = {
            "name": spec.name,
            "template": spec.template,
            "origination_identity": spec.origination_identity,
            "message_type": spec.message_type,
            "configuration_set": spec.configuration_set,
            "max_price": spec.max_price,
            "ttl": spec.ttl,
            "keyword": spec.keyword,
            "protect_configuration_id": spec.protect_configuration_id,
            "context": spec.context,
            "country_parameters": spec.country_parameters,
            "message_feedback": spec.message_feedback,
            "gsm_safe": spec.gsm_safe,
            "window": spec.window,
            "days": spec.days,
            "deadline": spec.deadline,
            "max_per_recipient": spec.max_per_recipient,
            "per_hours": spec.per_hours,
            "budget": spec.budget,
            "created_at": stamp,
            "updated_at": stamp,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(campaigns).values(**_json_encoded(values)))
        except IntegrityError:
            raise CampaignExists(spec.name) from None
        return self.get_campaign(spec.name)

    def get_campaign(self, name: str) -> Campaign:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
        if row is None:
            raise CampaignNotFound(name)
        return Campaign.from_row(row)

    def list_campaigns(self) -> list[tuple[Campaign, StateCounts]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(campaigns).order_by(campaigns.c.id)).all()
            tallies = conn.execute(
                select(
                    recipients.c.campaign_id,
                    recipients.c.state,
                    func.count(),
                    func.coalesce(func.sum(recipients.c.parts), 0),
                ).group_by(recipients.c.campaign_id, recipients.c.state)
            ).all()
        per: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
        for campaign_id, state, n, parts in tallies:
            counts, part_counts = per.setdefault(campaign_id, ({}, {}))
            counts[state] = n
            part_counts[state] = int(parts)
        result = []
        for row in rows:
            counts, part_counts = per.get(row.id, ({}, {}))
            result.append((Campaign.from_row(row), full_counts(counts, part_counts)))
        return result

    def update_campaign(self, campaign_id: int, **values: Any) -> None:
        values = _json_encoded(values)
        values["updated_at"] = now()
        with self.engine.begin() as conn:
            conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))

    # -- `edit`: a new message, and the recount of the pending recipients ------------------------

    def pending_fields(
        self, campaign_id: int, chunk: int = 10_000
    ) -> Iterator[list[tuple[int, int, str | None]]]:
        """(id, import_id, fields JSON) of every pending recipient, in chunks."""
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(recipients.c.id, recipients.c.import_id, recipients.c.fields)
                    .where(
                        recipients.c.campaign_id == campaign_id,
                        recipients.c.state == RecipientState.PENDING.value,
                        recipients.c.id > after,
                    )
                    .order_by(recipients.c.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            after = rows[-1][0]
            yield [(r[0], r[1], r[2]) for r in rows]

    def apply_recount(
        self,
        campaign_id: int,
        changes: dict[str, Any],
        updates: Sequence[tuple[str, str | None, int | None, str | None, int]],
        ucs2_rows: Sequence[dict[str, Any]],
    ) -> None:
        """A new message (or --gsm-safe) for the campaign and the recount of its pending
        recipients, in ONE transaction: (state, reason, parts, encoding, id) per recipient."""
        with self.engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(**changes, updated_at=now())
            )
            if updates:
                sql.recount_pending(conn, updates)
            conn.execute(
                ucs2_characters.delete().where(ucs2_characters.c.campaign_id == campaign_id)
            )
            if ucs2_rows:
                conn.execute(
                    insert(ucs2_characters),
                    [{**r, "campaign_id": campaign_id} for r in ucs2_rows],
                )


def _json_encoded(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with its mapping columns as JSON text, keys sorted (stable for comparisons), and
    amounts (the budget) as exact decimal text."""
    return {
        key: json.dumps(dict(value), sort_keys=True)
        if key in _JSON_COLUMNS
        else str(value)
        if isinstance(value, Decimal)
        else value
        for key, value in values.items()
    }
