"""`campaign edit`: change a campaign's settings, and when the message (or --gsm-safe) changes,
render and count every pending recipient again so estimates and pacing stay true.

Only `pending` recipients change: what was sent was sent with the old message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from campaign.domain import Campaign, RecipientState, sender_alive
from campaign.errors import UserError
from campaign.importing.rows import body_verdict, ucs2_totals_rows
from campaign.ledger import Ledger
from campaign.message import Template


@dataclass(frozen=True)
class RecountSummary:
    recipients: int
    parts_before: int
    parts_after: int
    now_invalid: int


def edit_campaign(
    ledger: Ledger, campaign: Campaign, changes: dict[str, Any]
) -> RecountSummary | None:
    """Store `changes` (validated column values); recount pending recipients when the template or
    gsm_safe changes. Returns the recount, or None when nothing needed recounting."""
    if sender_alive(campaign):
        raise UserError(
            f"campaign {campaign.name!r} is being sent right now (pid {campaign.sender_pid}); "
            "stop that send before editing it"
        )
    _refuse_while_senders_beat(ledger, campaign)
    template_text = changes.get("template", campaign.template)
    safe = changes.get("gsm_safe", campaign.gsm_safe)
    if template_text == campaign.template and safe == campaign.gsm_safe:
        ledger.update_campaign(campaign.id, **changes)
        return None
    old = Template.parse(campaign.template)
    new = Template.parse(template_text)
    kept = set(old.columns)
    missing = [c for c in new.columns if c not in kept]
    if missing and ledger.count_state(campaign.id, RecipientState.PENDING):
        raise UserError(
            f"the new message uses {', '.join('{' + c + '}' for c in missing)}, which the import "
            f"did not keep (it kept only the old message's columns: "
            f"{', '.join(sorted(kept)) or 'none'}); create a new campaign and import the file again"
        )
    before = sum(c.parts * c.recipients for c in ledger.parts_classes(campaign.id))
    updates: list[tuple[str, str | None, int | None, str | None, int]] = []
    totals: dict[tuple[int, str, str], list[int]] = {}
    invalid = 0
    after = 0
    for chunk in ledger.pending_fields(campaign.id):
        for recipient_id, import_id, fields_json in chunk:
            values = json.loads(fields_json) if fields_json else {}
            state, reason, parts, encoding, findings = body_verdict(new, values, safe)
            if state is None:
                state = RecipientState.PENDING.value
                after += parts or 0
                for char, source, extra in findings:
                    slot = totals.setdefault((import_id, char, source), [0, 0])
                    slot[0] += 1
                    slot[1] += extra
            else:
                invalid += 1
            updates.append((state, reason, parts, encoding, recipient_id))
    ledger.apply_recount(campaign.id, changes, updates, ucs2_totals_rows(totals))
    return RecountSummary(len(updates), before, after, invalid)


def _refuse_while_senders_beat(ledger: Ledger, campaign: Campaign) -> None:
    """On a shared ledger senders hold no lock: a registered sender that still beats is sending."""
    if not ledger.shared_ledger:
        return
    from campaign.ledger.claims import SENDER_TIMEOUT

    beating = [s for s in ledger.list_senders(campaign.id) if s.beating(SENDER_TIMEOUT)]
    if beating:
        who = ", ".join(f"pid {s.pid} on {s.host}" for s in beating)
        raise UserError(
            f"campaign {campaign.name!r} is being sent right now ({who}); "
            "stop those sends before editing it"
        )
