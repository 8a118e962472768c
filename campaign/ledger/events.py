"""The SQL of delivery events: record a batch of them, and read delivery back.

Every function takes an open Connection and leaves the transaction to the caller: the ingester records
a whole batch in ONE transaction and deletes its SQS messages only after the commit (at-least-once in,
exactly-once effect).

How a batch is recorded (`record_events`):
1. Match each event to a recipient: by its context (`campaign` = the campaign's name, `recipient` = the
   recipient's id, as campaign.aws.sms.build_request sends them; the destination number must agree),
   else by MessageId. The rest is set aside with the reason (`events_aside`).
2. Insert the matched events into `events`, unique on (event_ts, message_id, event_type): a duplicate
   is recognised by the database (ON CONFLICT DO NOTHING) and counted, never stored twice.
3. Reconcile: a recipient left `unknown` by a crash (or put back to `pending` by --retry-unknown but not
   re-sent yet) whose event arrives was accepted by AWS: it becomes `sent` with the event's MessageId.
4. Delivery: for each recipient, the batch's best event is applied only if it beats what is stored
   (a final event beats a non-final one; a later one beats an earlier one of the same kind), so
   events out of order never let an intermediate status overwrite a final one.
Each step is one whole-batch statement (executemany), so a million events take seconds, not minutes.

Portable SQL: `INSERT ... ON CONFLICT (...) DO NOTHING` is the same on SQLite (3.24+) and PostgreSQL;
the rest is plain UPDATE/SELECT with positional placeholders in the driver's style.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select

from campaign.domain import Campaign, RecipientState, aware, now
from campaign.events.parse import (
    DELIVERED,
    OTHER_CAMPAIGN,
    UNDELIVERED,
    UNKNOWN_MESSAGE,
    DeliveryEvent,
    Parsed,
    Rejected,
    event_key,
)
from campaign.ledger.sql import dialect_of, placeholders
from campaign.ledger.tables import attempts, campaigns, events, events_aside, recipients
from campaign.options import CONTEXT_KEY_CAMPAIGN, CONTEXT_KEY_RECIPIENT

LOOKUP_CHUNK = 5_000  # ids per IN (...) list: under every driver's parameter limit
RECONCILED_REASON = "accepted: a delivery event carried this recipient's context"
_RECONCILABLE = (RecipientState.UNKNOWN.value, RecipientState.PENDING.value)


@dataclass
class RecordOutcome:
    """What one batch (or, summed, one whole ingest) did to the ledger."""

    events: int = 0  # SMS events read (rejected inputs not included)
    stored: int = 0  # new rows in `events`
    duplicates: int = 0  # inputs already recorded (events, or set-aside inputs read again)
    aside: Counter[str] = field(default_factory=Counter)  # new set-aside inputs, by reason
    reconciled: int = 0  # `unknown` recipients that became `sent`
    delivery_updates: int = 0  # recipients whose delivery (or awaiting status) an event moved
    # Events kept but not applied: another message to the same recipient (a retried `unknown`), or
    # a recipient the ledger never saw accepted (failed, invalid...).
    not_applied: int = 0
    campaign_ids: set[int] = field(default_factory=set)  # campaigns the matched events belong to

    def add(self, other: RecordOutcome) -> None:
        self.events += other.events
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.aside.update(other.aside)
        self.reconciled += other.reconciled
        self.delivery_updates += other.delivery_updates
        self.not_applied += other.not_applied
        self.campaign_ids |= other.campaign_ids

    @property
    def matched(self) -> int:
        """New events that belong to one of the ledger's recipients."""
        return self.stored


class _Target(NamedTuple):
    """A recipient an event may belong to, as read before the batch is written."""

    id: int
    campaign_id: int
    state: str
    message_id: str | None
    phone: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class _Aside:
    reason: str
    detail: str
    event: DeliveryEvent


def record_events(
    conn: Connection, items: Sequence[Parsed], received_at: datetime
) -> RecordOutcome:
    """Record a batch of parsed inputs (events and rejected ones) in the caller's transaction."""
    if conn.dialect.name == "postgresql":
        items = [_storable(i) for i in items]
    delivery_events = [i for i in items if isinstance(i, DeliveryEvent)]
    outcome = RecordOutcome(events=len(delivery_events))
    stamp = dialect_of(conn).time(received_at)
    matched, aside = _match(conn, delivery_events)
    outcome.stored = _insert_events(conn, matched, stamp)
    outcome.campaign_ids = {t.campaign_id for _, t in matched}
    duplicate_events = len(matched) - outcome.stored
    rejected = [i for i in items if isinstance(i, Rejected)]
    new_aside = _insert_aside(conn, rejected, aside, stamp)
    outcome.aside.update(new_aside)
    outcome.duplicates = duplicate_events + len(rejected) + len(aside) - sum(new_aside.values())
    current = _reconcile(conn, matched, stamp)
    outcome.reconciled = current.reconciled + _reconcile_stored(conn, outcome.campaign_ids, stamp)
    outcome.delivery_updates, outcome.not_applied = _apply_delivery(conn, matched, current.ids)
    return outcome


# -- 1. matching ------------------------------------------------------------------------------------


_NUL = "\x00"


def _storable(item: Parsed) -> Parsed:
    """`item` with each NUL character in its text as U+FFFD: PostgreSQL's text cannot hold NUL,
    and events come from outside (one `\\u0000` in a JSON event failed the whole batch)."""
    if isinstance(item, DeliveryEvent):
        context = item.context
        if not any(isinstance(v, str) and _NUL in v for v in item) and not any(
            _NUL in k or _NUL in v for k, v in context.items()
        ):
            return item
        texts: dict[str, Any] = {
            name: _no_nul(value)
            for name, value in item._asdict().items()
            if isinstance(value, str) and _NUL in value
        }
        texts["context"] = {_no_nul(k): _no_nul(v) for k, v in context.items()}
        return item._replace(**texts)
    changes: dict[str, Any] = {
        name: _no_nul(value)
        for name in ("reason", "detail", "raw", "message_id", "event_type", "digest")
        if isinstance(value := getattr(item, name), str) and _NUL in value
    }
    return dataclasses.replace(item, **changes) if changes else item


def _no_nul(text: str) -> str:
    return text.replace(_NUL, "\ufffd")


def _match(
    conn: Connection, batch: Sequence[DeliveryEvent]
) -> tuple[list[tuple[DeliveryEvent, _Target]], list[_Aside]]:
    keys: list[tuple[str | None, int | None]] = []  # per event: (context campaign, recipient id)
    for e in batch:
        value = e.context.get(CONTEXT_KEY_RECIPIENT)
        # An id the recipients table can hold: ASCII digits within INTEGER ("²".isdigit() too).
        ok = value is not None and value.isascii() and value.isdigit() and len(value) <= 9
        rid = int(value) if ok and value is not None else None
        keys.append((e.context.get(CONTEXT_KEY_CAMPAIGN), rid))
    names = {name for name, _ in keys if name is not None}
    campaign_ids = _campaign_ids(conn, names) if names else {}
    by_id = _targets(
        conn, "id", {rid for name, rid in keys if rid is not None and name in campaign_ids}
    )
    by_message_id = _targets(
        conn,
        "message_id",
        {e.message_id for e, (name, _) in zip(batch, keys, strict=True) if name is None},
    )
    matched: list[tuple[DeliveryEvent, _Target]] = []
    aside: list[_Aside] = []
    for e, (name, rid) in zip(batch, keys, strict=True):
        if name is None:
            target = by_message_id.get(e.message_id)
            if target is None:
                aside.append(
                    _Aside(UNKNOWN_MESSAGE, "no context of ours; MessageId not in ledger", e)
                )
            else:
                matched.append((e, target))
            continue
        campaign_id = campaign_ids.get(name)
        if campaign_id is None:
            aside.append(_Aside(OTHER_CAMPAIGN, f"context campaign {name!r} not in ledger", e))
            continue
        target = by_id.get(rid) if rid is not None else None
        problem = _mismatch(e, target, campaign_id)
        if problem:
            aside.append(_Aside(UNKNOWN_MESSAGE, f"campaign {name!r}: {problem}", e))
        else:
            assert target is not None
            matched.append((e, target))
    return matched, aside


def _mismatch(e: DeliveryEvent, target: _Target | None, campaign_id: int) -> str | None:
    """Why an event naming one of our campaigns cannot be its recipient's (None: it can)."""
    if target is None or target.campaign_id != campaign_id:
        return f"no recipient {e.context.get(CONTEXT_KEY_RECIPIENT)!r} in it"
    # The context alone could come from another ledger with a campaign of the same name: the number
    # the message went to must be this recipient's.
    if e.destination and target.phone and e.destination != target.phone:
        return f"recipient {target.id} is {target.phone}, the event went to {e.destination}"
    return None


def _campaign_ids(conn: Connection, names: Iterable[Any]) -> dict[str, int]:
    rows = conn.execute(select(campaigns.c.name, campaigns.c.id).where(campaigns.c.name.in_(names)))
    return {name: campaign_id for name, campaign_id in rows}


def _targets(conn: Connection, column: str, keys: Iterable[Any]) -> dict[Any, _Target]:
    """Recipients whose `column` (id or message_id) is one of `keys`, keyed by it."""
    keys = list(keys)
    found: dict[Any, _Target] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        marks = ", ".join(placeholders(conn.dialect.paramstyle, len(chunk)))
        rows = conn.exec_driver_sql(
            "SELECT id, campaign_id, state, message_id, phone, attempts FROM recipients "
            f"WHERE {column} IN ({marks})",
            tuple(chunk),
        ).all()
        for row in rows:
            target = _Target(*row)
            found[target.id if column == "id" else target.message_id] = target
    return found


# -- 2. storing -------------------------------------------------------------------------------------


def _insert_events(
    conn: Connection, matched: Sequence[tuple[DeliveryEvent, _Target]], stamp: Any
) -> int:
    """Insert the matched events, skipping those already stored; returns how many were new."""
    if not matched:
        return 0
    columns = (
        "message_id, event_type, event_ts, is_final, campaign_id, recipient_id, status, "
        "description, parts, price, carrier_fee, iso_country, received_at"
    )
    marks = ", ".join(placeholders(conn.dialect.paramstyle, 13))
    rows = [
        (
            e.message_id,
            e.event_type,
            e.event_ts,
            e.is_final,
            t.campaign_id,
            t.id,
            e.status,
            e.description,
            e.parts,
            e.price,
            e.carrier_fee,
            e.iso_country,
            stamp,
        )
        for e, t in matched
    ]
    result = conn.exec_driver_sql(
        f"INSERT INTO events ({columns}) VALUES ({marks}) "
        "ON CONFLICT (event_ts, message_id, event_type) DO NOTHING",
        rows,
    )
    return int(result.rowcount)


def _insert_aside(
    conn: Connection, rejected: Sequence[Rejected], aside: Sequence[_Aside], stamp: Any
) -> Counter[str]:
    """Store what cannot be used, once each; returns the new ones by reason."""
    by_reason: dict[str, list[tuple[Any, ...]]] = {}
    row: tuple[Any, ...]
    for r in rejected:
        row = (
            r.fingerprint,
            r.reason,
            r.detail,
            r.message_id,
            r.event_type,
            r.event_ts,
            None,
            r.raw,
        )
        by_reason.setdefault(r.reason, []).append(row)
    for a in aside:
        e = a.event
        context = json.dumps(dict(e.context), sort_keys=True) if e.context else None
        key = event_key(e.message_id, e.event_type, e.event_ts)
        row = (key, a.reason, a.detail, e.message_id, e.event_type, e.event_ts, context, None)
        by_reason.setdefault(a.reason, []).append(row)
    columns = "fingerprint, reason, detail, message_id, event_type, event_ts, context, raw"
    marks = ", ".join(placeholders(conn.dialect.paramstyle, 9))
    new: Counter[str] = Counter()
    for reason, rows in by_reason.items():
        result = conn.exec_driver_sql(
            f"INSERT INTO events_aside ({columns}, received_at) VALUES ({marks}) "
            "ON CONFLICT (fingerprint) DO NOTHING",
            [(*row, stamp) for row in rows],
        )
        if result.rowcount:
            new[reason] += int(result.rowcount)
    return new


# -- 3. reconciling `unknown` -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Current:
    ids: dict[int, str | None]  # recipient id -> its MessageId after this batch's reconciling
    reconciled: int


def _reconcile(
    conn: Connection, matched: Sequence[tuple[DeliveryEvent, _Target]], stamp: Any
) -> _Current:
    """unknown -> sent with the event's MessageId (also `pending` with attempts made: put back by
    --retry-unknown, not re-sent yet). Guarded in SQL, so a concurrent change is never overwritten."""
    current: dict[int, str | None] = {}
    adopt: dict[int, DeliveryEvent] = {}
    for e, t in matched:
        current.setdefault(t.id, t.message_id)
        if _reconcilable(t):
            first = adopt.get(t.id)
            if first is None or e.event_ts < first.event_ts:
                adopt[t.id] = e
    if not adopt:
        return _Current(current, 0)
    marks = placeholders(conn.dialect.paramstyle, 4)
    result = conn.exec_driver_sql(
        f"UPDATE recipients SET state = 'sent', message_id = {marks[0]}, reason = {marks[1]}, "
        f"updated_at = {marks[2]} WHERE id = {marks[3]} AND message_id IS NULL AND ("
        "state = 'unknown' OR (state = 'pending' AND attempts > 0))",
        [(e.message_id, RECONCILED_REASON, stamp, rid) for rid, e in adopt.items()],
    )
    for rid, e in adopt.items():
        current[rid] = e.message_id
    return _Current(current, int(result.rowcount))


def _reconcile_stored(conn: Connection, campaign_ids: Iterable[int], stamp: Any) -> int:
    """unknown -> sent for recipients whose events were recorded earlier, while their call was still
    `sending` (the events overtook the crash's recovery, which made them `unknown` only after): the
    earliest event's MessageId. One indexed statement per campaign of the batch."""
    marks = placeholders(conn.dialect.paramstyle, 3)
    earliest = (
        "SELECT e.message_id FROM events e WHERE e.recipient_id = recipients.id "
        "ORDER BY e.event_ts, e.id LIMIT 1"
    )
    reconciled = 0
    for campaign_id in sorted(campaign_ids):
        result = conn.exec_driver_sql(
            f"UPDATE recipients SET state = 'sent', message_id = ({earliest}), "
            f"reason = {marks[0]}, updated_at = {marks[1]} "
            f"WHERE campaign_id = {marks[2]} AND state = 'unknown' AND message_id IS NULL "
            "AND EXISTS (SELECT 1 FROM events e WHERE e.recipient_id = recipients.id)",
            (RECONCILED_REASON, stamp, campaign_id),
        )
        reconciled += int(result.rowcount)
    return reconciled


def reconcile_recorded(conn: Connection, received_at: datetime) -> int:
    """What `_reconcile_stored` does for a batch, for every campaign: run once when an ingest
    starts, so a recipient whose events came in before the crash's recovery made it `unknown` is
    reconciled even if no new event of its campaign arrives."""
    ids = conn.execute(select(campaigns.c.id)).scalars().all()
    return _reconcile_stored(conn, ids, dialect_of(conn).time(received_at))


def _reconcilable(t: _Target) -> bool:
    return (
        t.message_id is None
        and t.state in _RECONCILABLE
        and (t.state == RecipientState.UNKNOWN.value or t.attempts > 0)
    )


# -- 4. delivery ------------------------------------------------------------------------------------


def _rank(e: DeliveryEvent) -> tuple[bool, int, str]:
    """Which of two events of one message tells its delivery: a deciding (final) one beats one that
    is not, then the later one; the type breaks a tie so the choice never depends on arrival order."""
    return (e.delivery is not None, e.event_ts, e.event_type)


def _apply_delivery(
    conn: Connection,
    matched: Sequence[tuple[DeliveryEvent, _Target]],
    current: Mapping[int, str | None],
) -> tuple[int, int]:
    """Apply each recipient's best event of the batch, if it beats the stored one.
    Returns (recipients updated, events of another message than the recipient's own)."""
    best: dict[int, DeliveryEvent] = {}
    other = 0
    for e, t in matched:
        message_id = current.get(t.id)
        if message_id is None and t.state != RecipientState.SENDING.value:
            other += 1  # never accepted by our account as far as the ledger knows: not applied
            continue
        if message_id is not None and message_id != e.message_id:
            other += 1
            continue
        held = best.get(t.id)
        if held is None or _rank(e) > _rank(held):
            best[t.id] = e
    if not best:
        return 0, other
    as_text = conn.dialect.name == "sqlite"
    finals, waiting = [], []
    for rid, e in best.items():
        at = _event_time(e.event_ts, as_text)
        if e.delivery is not None:
            reason = e.reason if e.delivery == UNDELIVERED else None
            finals.append((e.delivery, reason, at, e.charged, rid, e.message_id, at))
        else:
            waiting.append((e.reason, at, e.charged, rid, e.message_id, at))
    updated = 0
    m = placeholders(conn.dialect.paramstyle, 7)
    if finals:
        result = conn.exec_driver_sql(
            f"UPDATE recipients SET delivery = {m[0]}, delivery_reason = {m[1]}, "
            f"delivery_at = {m[2]}, charged = COALESCE({m[3]}, charged) "
            f"WHERE id = {m[4]} AND (message_id = {m[5]} OR message_id IS NULL) "
            f"AND (delivery IS NULL OR delivery_at < {m[6]})",
            finals,
        )
        updated += int(result.rowcount)
    if waiting:
        result = conn.exec_driver_sql(
            f"UPDATE recipients SET delivery_reason = {m[0]}, delivery_at = {m[1]}, "
            f"charged = COALESCE({m[2]}, charged) "
            f"WHERE id = {m[3]} AND (message_id = {m[4]} OR message_id IS NULL) "
            f"AND delivery IS NULL AND (delivery_at IS NULL OR delivery_at < {m[5]})",
            waiting,
        )
        updated += int(result.rowcount)
    return updated, other


def _event_time(ts_ms: int, as_text: bool) -> Any:
    """An event's time as the driver takes a DateTime: on SQLite the naive UTC text SQLAlchemy
    stores (made from a cached per-second prefix: strftime per event would cost seconds per
    million), elsewhere the aware datetime."""
    if as_text:
        return f"{_second_text(ts_ms // 1000)}.{ts_ms % 1000:03d}000"
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


@functools.lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))


# -- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryCounts:
    """The delivery funnel of a campaign's `sent` recipients, and what AWS charged for them."""

    sent: int
    delivered: int
    undelivered: int
    awaiting: int
    charged: float  # USD, from the events
    charged_recipients: int  # recipients with a charge known

    def as_dict(self) -> dict[str, int]:
        return {
            DELIVERED: self.delivered,
            UNDELIVERED: self.undelivered,
            "awaiting": self.awaiting,
        }


def delivery_counts(conn: Connection, campaign_id: int) -> DeliveryCounts:
    rows = conn.execute(
        select(
            recipients.c.delivery,
            func.count(),
            func.coalesce(func.sum(recipients.c.charged), 0.0),
            func.count(recipients.c.charged),
        )
        .where(
            recipients.c.campaign_id == campaign_id,
            recipients.c.state == RecipientState.SENT.value,
        )
        .group_by(recipients.c.delivery)
    ).all()
    counts = {delivery: int(n) for delivery, n, _, _ in rows}
    return DeliveryCounts(
        sent=sum(counts.values()),
        delivered=counts.get(DELIVERED, 0),
        undelivered=counts.get(UNDELIVERED, 0),
        awaiting=counts.get(None, 0),
        charged=float(sum(c for _, _, c, _ in rows)),
        charged_recipients=int(sum(k for _, _, _, k in rows)),
    )


def undelivered_reasons(
    conn: Connection, campaign_id: int, limit: int = 10
) -> list[tuple[str, int]]:
    """The most frequent reasons recipients were not delivered, most frequent first."""
    count = func.count().label("n")
    rows = conn.execute(
        select(recipients.c.delivery_reason, count)
        .where(
            recipients.c.campaign_id == campaign_id,
            recipients.c.delivery == UNDELIVERED,
        )
        .group_by(recipients.c.delivery_reason)
        .order_by(count.desc(), recipients.c.delivery_reason)
        .limit(limit)
    ).all()
    return [(reason or "", int(n)) for reason, n in rows]


def timeline(conn: Connection, recipient_id: int) -> list[dict[str, Any]]:
    """Every event recorded for a recipient, oldest first."""
    rows = conn.execute(
        select(events)
        .where(events.c.recipient_id == recipient_id)
        .order_by(events.c.event_ts, events.c.id)
    ).all()
    return [r._asdict() for r in rows]


def aside_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(events_aside.c.reason, func.count()).group_by(events_aside.c.reason)
    ).all()
    return {reason: int(n) for reason, n in rows}


def delivery_by_campaign(
    conn: Connection, campaign_ids: Iterable[int]
) -> list[tuple[str, DeliveryCounts]]:
    """(campaign name, delivery funnel) of each campaign given, by name."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return []
    names = conn.execute(
        select(campaigns.c.id, campaigns.c.name).where(campaigns.c.id.in_(ids))
    ).all()
    return sorted((name, delivery_counts(conn, cid)) for cid, name in names)


@dataclass(frozen=True)
class UnknownSplit:
    """A campaign's `unknown` recipients, split by the time their last call went out.

    No event arrived for any of them (an event with their context would have made them `sent`).
    AWS reports every accepted message within its TimeToLive (72 h at most), so those called before
    `cutoff` (TTL plus a margin ago) were very probably never accepted: safe to retry. The others may
    still be accepted, and their events may still come."""

    probably_never_accepted: list[int]  # recipient ids
    may_still_be_accepted: list[int]
    phones: Mapping[int, str | None] = field(default_factory=dict)  # recipient id -> its number


def unknown_split(conn: Connection, campaign_id: int, cutoff: datetime) -> UnknownSplit:
    last_call = func.max(attempts.c.started_at).label("last_call")
    has_event = (
        select(events.c.id).where(events.c.recipient_id == recipients.c.id).exists().label("ev")
    )
    rows = conn.execute(
        select(recipients.c.id, last_call, has_event, recipients.c.phone)
        .outerjoin(attempts, attempts.c.recipient_id == recipients.c.id)
        .where(
            recipients.c.campaign_id == campaign_id,
            recipients.c.state == RecipientState.UNKNOWN.value,
        )
        .group_by(recipients.c.id)
        .order_by(recipients.c.id)
    ).all()
    old: list[int] = []
    # Also those with no call to date them by, and those with an event recorded (accepted: the next
    # ingest makes them `sent`): not known to be safe.
    recent: list[int] = []
    for rid, when, evidence, _ in rows:
        called = aware(when)
        safe = called is not None and called < cutoff and not evidence
        (old if safe else recent).append(rid)
    return UnknownSplit(old, recent, {rid: phone for rid, _, _, phone in rows})


def has_events(conn: Connection, campaign_id: int) -> bool:
    """Whether any delivery event of this campaign is recorded (its events reach the ledger)."""
    found = conn.execute(
        select(events.c.id).where(events.c.campaign_id == campaign_id).limit(1)
    ).first()
    return found is not None


# -- the Ledger's methods ---------------------------------------------------------------------------

# AWS reports an accepted message within its TimeToLive (72 h by default, the most it allows); the
# margin covers the way from AWS to the ledger (SNS, SQS, an ingest that runs now and then).
DEFAULT_TTL = timedelta(seconds=259_200)
UNKNOWN_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class UnknownOutcomes:
    """What the events (or their absence) say about a campaign's `unknown` recipients."""

    split: UnknownSplit
    window: timedelta  # TimeToLive + margin: after it, no event means very probably never accepted
    why_none_safe: str | None = None  # why no recipient can be called safe, whatever their age

    @property
    def safe(self) -> list[int]:
        return self.split.probably_never_accepted

    @property
    def unsafe(self) -> list[int]:
        return self.split.may_still_be_accepted

    @property
    def total(self) -> int:
        return len(self.safe) + len(self.unsafe)


class EventsMixin:
    """The Ledger's reads of delivery events (the ingester writes through record_events)."""

    engine: Engine

    def delivery_counts(self, campaign_id: int) -> DeliveryCounts:
        with self.engine.connect() as conn:
            return delivery_counts(conn, campaign_id)

    def undelivered_reasons(self, campaign_id: int, limit: int = 5) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            return undelivered_reasons(conn, campaign_id, limit)

    def unknown_outcomes(self, campaign: Campaign, at: datetime | None = None) -> UnknownOutcomes:
        """The campaign's `unknown` recipients split into very probably never accepted (called
        longer than TimeToLive + margin ago, no event since: safe to retry) and the others. None is
        safe when no event can come (no configuration set) or none of the campaign's has come."""
        window = (timedelta(seconds=campaign.ttl) if campaign.ttl else DEFAULT_TTL) + UNKNOWN_MARGIN
        with self.engine.connect() as conn:
            split = unknown_split(conn, campaign.id, (at or now()) - window)
            if not split.probably_never_accepted:
                return UnknownOutcomes(split, window)
            why = None
            if has_events(conn, campaign.id):
                pass  # its events reach the ledger: the silence about the others means something
            elif not campaign.configuration_set:
                why = (
                    "the campaign has no configuration set, so AWS sends no delivery events for it"
                )
            else:
                why = (
                    "no delivery event of this campaign is recorded yet "
                    "(run `campaign events ingest`)"
                )
        if why is None:
            return UnknownOutcomes(split, window)
        everyone = sorted(split.probably_never_accepted + split.may_still_be_accepted)
        return UnknownOutcomes(UnknownSplit([], everyone, split.phones), window, why)
