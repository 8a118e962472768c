"""The sender registry: who is sending, from where, and whether it is still alive.

Each `send` process registers one row and heartbeats it every few seconds. Every time in this
table is the DATABASE's clock (`db_now`), so senders on hosts whose clocks disagree still agree on
who is silent. A sender silent for longer than a timeout is declared `lost` by any live sender;
the caller then turns the lost sender's `sending` claims into `unknown` (in the same transaction,
by passing its Connection), since those calls may or may not have gone out.

Fencing: a heartbeat from a sender that was declared lost fails with `SenderLost` (it must stop
starting calls and exit non-zero), and a lost sender is never live again.

Declaring senders lost is safe to run from every live sender at once: the stale rows are locked
with FOR UPDATE SKIP LOCKED, so two declarers split them and each sender is declared lost exactly
once (on SQLite the whole statement is atomic anyway: one writer at a time).

Every function takes an Engine (its own transaction) or a Connection (the caller's transaction).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, insert, select, update

from campaign.domain import aware
from campaign.errors import UserError
from campaign.ledger.engine import db_now, transaction
from campaign.ledger.tables import campaigns, senders


class SenderState(enum.StrEnum):
    LIVE = "live"
    STOPPED = "stopped"  # ended on its own (finished, Ctrl-C, an error it reported)
    LOST = "lost"  # silent past the timeout; its claims were handed to `unknown`


class SenderLost(UserError):
    """This sender is no longer live in the registry: it must start no new call and exit."""


@dataclass(frozen=True)
class SenderInfo:
    id: int
    campaign_id: int
    host: str
    pid: int
    state: SenderState
    started_at: datetime
    heartbeat_at: datetime
    lost_at: datetime | None
    rate: float | None
    rate_note: str | None
    silent_for: float  # seconds since its last heartbeat, on the database's clock

    def beating(self, timeout: float) -> bool:
        """Live, and heard from within the last `timeout` seconds: it is sending."""
        return self.state is SenderState.LIVE and self.silent_for <= timeout


def register(bind: Engine | Connection, campaign_id: int, *, host: str, pid: int) -> int:
    """A new live sender for `campaign_id`; returns its id."""
    with transaction(bind) as conn:
        return int(
            conn.execute(
                insert(senders)
                .values(
                    campaign_id=campaign_id,
                    host=host,
                    pid=pid,
                    started_at=db_now(),
                    heartbeat_at=db_now(),
                    state=SenderState.LIVE.value,
                )
                .returning(senders.c.id)
            ).scalar_one()
        )


def heartbeat(
    bind: Engine | Connection,
    sender_id: int,
    *,
    rate: float | None = None,
    rate_note: str | None = None,
) -> None:
    """Stamp the sender alive (with its current rate, for `status`); raises `SenderLost` if it
    was declared lost or has stopped: the fencing signal."""
    with transaction(bind) as conn:
        stamped = conn.execute(
            update(senders)
            .where(senders.c.id == sender_id, senders.c.state == SenderState.LIVE.value)
            .values(heartbeat_at=db_now(), rate=rate, rate_note=rate_note)
            .returning(senders.c.id)
        ).first()
        if stamped is None:
            raise _not_live(conn, sender_id)


def _not_live(conn: Connection, sender_id: int) -> SenderLost:
    row = conn.execute(
        select(senders.c.state, senders.c.lost_at, senders.c.heartbeat_at).where(
            senders.c.id == sender_id
        )
    ).first()
    if row is None:
        return SenderLost(f"sender {sender_id} is not registered in this ledger")
    if row.state == SenderState.LOST.value:
        lost_at, heartbeat_at = aware(row.lost_at), aware(row.heartbeat_at)
        assert lost_at is not None and heartbeat_at is not None  # set together with `lost`
        silent = (lost_at - heartbeat_at).total_seconds()
        return SenderLost(
            f"sender {sender_id} was declared lost by another sender at {lost_at:%H:%M:%S} UTC "
            f"after {silent:.0f}s without a heartbeat; its calls in flight are now 'unknown' "
            "and it starts no new call"
        )
    return SenderLost(f"sender {sender_id} has already stopped")


def stop(bind: Engine | Connection, sender_id: int) -> bool:
    """live -> stopped, when the sender ends on its own. False if it was no longer live (a lost
    sender stays lost)."""
    with transaction(bind) as conn:
        result = conn.execute(
            update(senders)
            .where(senders.c.id == sender_id, senders.c.state == SenderState.LIVE.value)
            .values(state=SenderState.STOPPED.value, rate=None, rate_note=None)
        )
        return result.rowcount == 1


def declare_lost(bind: Engine | Connection, *, timeout: float, by: int | None = None) -> list[int]:
    """Mark every live sender silent for more than `timeout` seconds `lost`, and return their
    ids (each id is returned by exactly one call, however many senders run this at once).

    `by`: the calling sender, never declared lost by itself. Pass a Connection inside a
    transaction to recover the lost senders' claims in the same commit."""
    stale = (
        select(senders.c.id)
        .where(
            senders.c.state == SenderState.LIVE.value,
            senders.c.heartbeat_at < db_now(timeout),
        )
        # Two declarers at once: the second skips the rows the first has locked instead of
        # waiting for them, then finds them no longer live. SQLite drops the clause.
        .with_for_update(skip_locked=True)
    )
    if by is not None:
        stale = stale.where(senders.c.id != by)
    return _mark_lost(bind, senders.c.id.in_(stale))


def declare_campaign_lost(bind: Engine | Connection, campaign_id: int, *, but: int) -> list[int]:
    """Declare every live sender of the campaign but `but` lost, whatever its heartbeat: on SQLite
    the campaign's lock decides who is alive, and `but` has just taken it from them."""
    return _mark_lost(bind, senders.c.campaign_id == campaign_id, senders.c.id != but)


def _mark_lost(bind: Engine | Connection, *which: ColumnElement[bool]) -> list[int]:
    """live -> lost for the senders `which` selects, on the database's clock; their ids, sorted."""
    with transaction(bind) as conn:
        rows = conn.execute(
            update(senders)
            .where(*which, senders.c.state == SenderState.LIVE.value)
            .values(state=SenderState.LOST.value, lost_at=db_now(), rate=None, rate_note=None)
            .returning(senders.c.id)
        ).all()
    return sorted(r.id for r in rows)


def list_senders(
    bind: Engine | Connection, campaign_id: int | None = None, *, include_stopped: bool = False
) -> list[SenderInfo]:
    """The registered senders (of one campaign, or all), oldest first; stopped ones only on
    request (every finished `send` leaves one)."""
    query = select(senders, db_now().label("checked_at")).order_by(senders.c.id)
    if campaign_id is not None:
        query = query.where(senders.c.campaign_id == campaign_id)
    if not include_stopped:
        query = query.where(senders.c.state != SenderState.STOPPED.value)
    with transaction(bind) as conn:
        rows = conn.execute(query).all()
    return [_sender_info(row) for row in rows]


def _sender_info(row: Any) -> SenderInfo:
    checked_at = aware(row.checked_at)
    heartbeat_at = aware(row.heartbeat_at)
    assert checked_at is not None and heartbeat_at is not None  # NOT NULL
    return SenderInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        host=row.host,
        pid=row.pid,
        state=SenderState(row.state),
        started_at=aware(row.started_at) or heartbeat_at,
        heartbeat_at=heartbeat_at,
        lost_at=aware(row.lost_at),
        rate=row.rate,
        rate_note=row.rate_note,
        silent_for=max(0.0, (checked_at - heartbeat_at).total_seconds()),
    )


def live_on_identity(bind: Engine | Connection, identity: str) -> list[SenderInfo]:
    """The live senders of every campaign sending from origination identity `identity` (they share
    its MPS), oldest first."""
    query = (
        select(senders, db_now().label("checked_at"))
        .join(campaigns, campaigns.c.id == senders.c.campaign_id)
        .where(
            campaigns.c.origination_identity == identity,
            senders.c.state == SenderState.LIVE.value,
        )
        .order_by(senders.c.id)
    )
    with transaction(bind) as conn:
        rows = conn.execute(query).all()
    return [_sender_info(row) for row in rows]
