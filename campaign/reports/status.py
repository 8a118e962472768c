"""`campaign status`: counts by state, parts, the live sender, rate and ETA, as one dict."""

from __future__ import annotations

import socket
from typing import Any

from campaign.domain import now
from campaign.ledger import Ledger
from campaign.pricing import PriceTable, classes_cost

RATE_WINDOW_SECONDS = 10.0
HEARTBEAT_FRESH_SECONDS = 60.0


def campaign_status(ledger: Ledger, name: str, prices: PriceTable | None = None) -> dict[str, Any]:
    campaign = ledger.get_campaign(name)
    tally = ledger.state_counts(campaign.id)
    info: dict[str, Any] = {
        "campaign": campaign.name,
        "counts": tally.counts,
        "recipients": tally.total,
        "parts_sent": tally.parts["sent"],
        "parts_pending": tally.parts["pending"] + tally.parts["sending"],
        "origination_identity": campaign.origination_identity,
        "message_type": campaign.message_type,
        "max_price": campaign.max_price,
        "imports": len(ledger.list_imports(campaign.id)),
    }
    heartbeat = campaign.sender_heartbeat
    alive = (
        campaign.sender_pid is not None
        and heartbeat is not None
        and (now() - heartbeat).total_seconds() < HEARTBEAT_FRESH_SECONDS
    )
    info["sender"] = (
        {
            "pid": campaign.sender_pid,
            "host": campaign.sender_host or socket.gethostname(),
            "heartbeat": heartbeat,
        }
        if alive
        else None
    )
    if alive:
        messages, parts = ledger.recent_rate(campaign.id, RATE_WINDOW_SECONDS)
        rate = parts / RATE_WINDOW_SECONDS
        info["rate_parts_per_second"] = rate
        info["rate_messages_per_second"] = messages / RATE_WINDOW_SECONDS
        info["eta_seconds"] = info["parts_pending"] / rate if rate > 0 else None
    if prices is not None:
        info["spend"] = _spend(ledger, campaign.id, prices)
    last = ledger.last_run(campaign.id)
    info["last_run"] = (
        {
            "started_at": last.started_at,
            "ended_at": last.ended_at,
            "dry_run": last.dry_run,
            "mps": last.mps,
            "exit_code": last.exit_code,
            "note": last.note,
        }
        if last
        else None
    )
    return info


def _spend(ledger: Ledger, campaign_id: int, prices: PriceTable) -> dict[str, Any]:
    """Estimated spend of what was sent and of what is still to send, from the price table."""
    sent, unpriced_sent = classes_cost(ledger.parts_classes(campaign_id, ("sent",)), prices)
    to_send, unpriced_rest = classes_cost(
        ledger.parts_classes(campaign_id, ("pending", "sending")), prices
    )
    return {
        "prices": prices.source,
        "unpriced": unpriced_sent + unpriced_rest,
        "sent": float(round(sent, 6)),
        "to_send": float(round(to_send, 6)),
    }
