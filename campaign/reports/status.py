"""`campaign status`: counts by state, parts, the live sender, rate and ETA, as one typed object.

`CampaignStatus.to_json()` is the `status --json` contract (docs/contract.md: every state in
`counts`, zeros included); campaign.cli.render draws the same object for the terminal.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from campaign.audience.gate import Holdback, campaign_policy, holdback
from campaign.domain import ALL_STATES, Campaign, RecipientState, RunInfo, now, sender_alive
from campaign.ledger import Ledger
from campaign.ledger.claims import SENDER_TIMEOUT
from campaign.ledger.events import DeliveryCounts, UnknownOutcomes
from campaign.ledger.senders import SenderInfo, SenderState
from campaign.pricing import PriceTable, classes_cost, recorded_spend

RATE_WINDOW_SECONDS = 10.0
LOST_SENDERS_SHOWN = 5  # the most recent lost senders `status` lists


@dataclass(frozen=True)
class LiveSender:
    """The sender running now, as its lock in the ledger says."""

    pid: int | None
    host: str
    heartbeat: datetime | None
    parts_per_second: float  # over the last RATE_WINDOW_SECONDS
    messages_per_second: float
    eta_seconds: float | None  # None: nothing sent lately, no rate to go by


@dataclass(frozen=True)
class Spend:
    """Estimated spend from a price table: what was sent and what is still to send."""

    prices: str
    unpriced: int  # recipients with no price in the table (not counted)
    sent: float
    to_send: float
    # What a campaign budget counts as spent (campaign.pricing.recorded_spend): every call
    # that may have cost, accepted, `unknown` or in flight (as `sent` without a campaign budget).
    counted: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """What delivery events say: the funnel of the sent recipients, what AWS charged, the top
    undelivered reasons, and which `unknown` recipients were very probably never accepted."""

    configuration_set: str | None  # None: AWS sends no events for this campaign
    counts: DeliveryCounts
    reasons: list[tuple[str, int]]  # most frequent first
    unknown: UnknownOutcomes

    def to_json(self) -> dict[str, Any]:
        c, u = self.counts, self.unknown
        return {
            "delivery": c.as_dict(),
            "charged": round(c.charged, 6),
            "charged_recipients": c.charged_recipients,
            "undelivered_reasons": [{"reason": r, "recipients": n} for r, n in self.reasons],
            "unknown_outcomes": {
                "probably_never_accepted": len(u.safe),
                "may_still_be_accepted": len(u.unsafe),
                "after_hours": round(u.window.total_seconds() / 3600, 2),
                "why_none_safe": u.why_none_safe,
            },
        }


@dataclass(frozen=True)
class CampaignStatus:
    campaign: str
    origination_identity: str
    message_type: str
    max_price: str | None
    counts: Mapping[str, int]  # every state, zeros included
    parts_sent: int
    parts_pending: int  # pending + sending
    imports: int
    sender: LiveSender | None  # None: no sender alive
    spend: Spend | None  # None: no price table given
    last_run: RunInfo | None
    # The last run recorded no end and no sender is alive (campaign.domain.sender_alive): it was
    # killed or crashed mid-send.
    last_run_crashed: bool = False
    delivery: Delivery | None = None  # from delivery events
    window: Holdback | None = None  # pending recipients by what their window says now
    deadline: datetime | None = None
    budget: Decimal | None = None  # the campaign's budget over all its sends (revision 0009)
    # The sender registry: the live senders, then the most recent lost ones (issue 9).
    senders: tuple[SenderInfo, ...] = ()

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        """The `status --json` object; its keys are a contract (docs/contract.md, tests)."""
        info: dict[str, Any] = {
            "campaign": self.campaign,
            "counts": dict(self.counts),
            "recipients": self.recipients,
            "parts_sent": self.parts_sent,
            "parts_pending": self.parts_pending,
            "origination_identity": self.origination_identity,
            "message_type": self.message_type,
            "max_price": self.max_price,
            "budget": str(self.budget) if self.budget is not None else None,
            "imports": self.imports,
            "sender": None,
        }
        live = self.sender
        if live is not None:
            info["sender"] = {
                "pid": live.pid,
                "host": live.host,
                "heartbeat": _text(live.heartbeat),
            }
            info["rate_parts_per_second"] = live.parts_per_second
            info["rate_messages_per_second"] = live.messages_per_second
            info["eta_seconds"] = live.eta_seconds
        if self.spend is not None:
            s = self.spend
            info["spend"] = {
                "prices": s.prices,
                "unpriced": s.unpriced,
                "sent": s.sent,
                "to_send": s.to_send,
            }
        if self.window is not None:
            info["window"] = self.window.to_json()
        info["deadline"] = _text(self.deadline)
        last = self.last_run
        info["last_run"] = (
            {
                "started_at": _text(last.started_at),
                "ended_at": _text(last.ended_at),
                "dry_run": last.dry_run,
                "mps": last.mps,
                "exit_code": last.exit_code,
                "note": last.note,
                "crashed": self.last_run_crashed,
            }
            if last
            else None
        )
        if self.delivery is not None:
            info.update(
                self.delivery.to_json()
            )  # docs/contract.md: "delivery" and the charged spend
        info["senders"] = [sender_json(s) for s in self.senders]
        return info


def sender_json(s: SenderInfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "host": s.host,
        "pid": s.pid,
        "state": s.state.value,
        "rate_parts_per_second": s.rate,
        "rate_note": s.rate_note,
        "started_at": _text(s.started_at),
        "heartbeat": _text(s.heartbeat_at),
        "silent_seconds": round(s.silent_for, 1),
        "silent_past_timeout": s.state is SenderState.LIVE and not s.beating(SENDER_TIMEOUT),
        "lost_at": _text(s.lost_at),
    }


def campaign_senders(ledger: Ledger, campaign_id: int) -> tuple[SenderInfo, ...]:
    """The campaign's live senders, and its most recent lost ones."""
    found = ledger.list_senders(campaign_id)
    live = [s for s in found if s.state is SenderState.LIVE]
    lost = [s for s in found if s.state is SenderState.LOST][-LOST_SENDERS_SHOWN:]
    return (*live, *lost)


def campaign_status(ledger: Ledger, name: str, prices: PriceTable | None = None) -> CampaignStatus:
    campaign = ledger.get_campaign(name)
    tally = ledger.state_counts(campaign.id)
    parts_pending = tally.parts[RecipientState.PENDING] + tally.parts[RecipientState.SENDING]
    live = None
    registered = campaign_senders(ledger, campaign.id)
    # On a shared ledger there is no lock: the newest live sender that is not silent stands for
    # them all (`senders` lists each); the rate is the campaign's, from every sender's attempts.
    beating = [s for s in registered if s.beating(SENDER_TIMEOUT)] if ledger.shared_ledger else []
    locked = sender_alive(campaign)
    if locked or beating:
        messages, parts = ledger.recent_rate(campaign.id, RATE_WINDOW_SECONDS)
        rate = parts / RATE_WINDOW_SECONDS
        newest = beating[-1] if beating and not locked else None
        live = LiveSender(
            pid=newest.pid if newest else campaign.sender_pid,
            host=newest.host if newest else campaign.sender_host or socket.gethostname(),
            heartbeat=newest.heartbeat_at if newest else campaign.sender_heartbeat,
            parts_per_second=rate,
            messages_per_second=messages / RATE_WINDOW_SECONDS,
            eta_seconds=parts_pending / rate if rate > 0 else None,
        )
    last_run = ledger.last_run(campaign.id)
    return CampaignStatus(
        campaign=campaign.name,
        origination_identity=campaign.origination_identity,
        message_type=campaign.message_type,
        max_price=campaign.max_price,
        counts={state: tally.counts.get(state, 0) for state in ALL_STATES},
        parts_sent=tally.parts[RecipientState.SENT],
        parts_pending=parts_pending,
        imports=len(ledger.list_imports(campaign.id)),
        sender=live,
        spend=_spend(ledger, campaign.id, prices, campaign.budget is not None)
        if prices is not None
        else None,
        last_run=last_run,
        last_run_crashed=last_run is not None and last_run.ended_at is None and live is None,
        delivery=_delivery(ledger, campaign),
        window=holdback(ledger.pending_groups(campaign.id), campaign_policy(campaign), now()),
        deadline=campaign.deadline,
        budget=campaign.budget,
        senders=registered,
    )


def _spend(ledger: Ledger, campaign_id: int, prices: PriceTable, budgeted: bool = False) -> Spend:
    """Estimated spend of what was sent and of what is still to send, from the price table."""
    sent, unpriced_sent = classes_cost(
        ledger.parts_classes(campaign_id, (RecipientState.SENT.value,)), prices
    )
    to_send, unpriced_rest = classes_cost(
        ledger.parts_classes(
            campaign_id, (RecipientState.PENDING.value, RecipientState.SENDING.value)
        ),
        prices,
    )
    # Read only for a campaign budget: every call of the campaign, as the sender counts it.
    counted = recorded_spend(ledger, campaign_id, prices)[0] if budgeted else sent
    return Spend(
        prices=prices.source,
        unpriced=unpriced_sent + unpriced_rest,
        sent=float(round(sent, 6)),
        to_send=float(round(to_send, 6)),
        counted=float(round(counted, 6)),
    )


def _text(value: datetime | None) -> str | None:
    # As `status --json` has always written times: str(datetime), "2026-05-01 12:00:00+00:00".
    return None if value is None else str(value)


def _delivery(ledger: Ledger, campaign: Campaign) -> Delivery:
    counts = ledger.delivery_counts(campaign.id)
    return Delivery(
        configuration_set=campaign.configuration_set,
        counts=counts,
        # The reasons read every undelivered row: skipped when there is none (a 1M-recipient
        # campaign before any event spent 0.3 s of `status` finding nothing).
        reasons=ledger.undelivered_reasons(campaign.id, limit=5) if counts.undelivered else [],
        unknown=ledger.unknown_outcomes(campaign),
    )
