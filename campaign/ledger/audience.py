"""Who may be claimed now: the window's groups, the do-not-send list and the frequency cap in SQL,
and the transitions they cause (`suppressed`, `expired`, the `held:` reasons).

The sender's claim (campaign.ledger.claims, campaign.ledger.sql) uses these pieces:

1. `claim_filter_sql(conn, p, claim_filter, now)`: an SQL condition on `recipients` that keeps the
   candidates whose (tz_key, country) group is open now (campaign.audience.gate.WindowGate) and
   whose number is under the campaign's frequency cap. It goes into the statement that picks the
   candidates (`claimable_pending` is that SELECT, ready to use), or into the claiming UPDATE.
2. `mark_suppressed(conn, campaign_id, ids, stamp)`: in the claim's own transaction, before the
   `pending -> sending` UPDATE: candidates whose number is on the do-not-send list now become
   `suppressed` (so a number listed while a campaign runs is skipped), and the claim, which takes
   only `pending` rows, leaves them out.
3. `expire_pending(campaign_id, reason)` at the deadline.

The frequency cap counts, for the candidate's number, the calls started in the last N hours by any
campaign of the ledger that may have delivered a message (accepted, unknown, or still in flight;
never dry runs, throttles or refusals): through ix_recipients_claimed_phone (the recipients ever
claimed, by number) and ix_attempts_recipient. Two senders of two campaigns claiming the same
number in the same instant can each see the other's call not yet committed: the cap can be
exceeded by the senders running at once, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    func,
    literal_column,
    select,
    update,
)

from campaign.audience.gate import HELD_PREFIX, FrequencyCap, held_reason
from campaign.audience.schedule import GroupLoad
from campaign.audience.suppression import SUPPRESSED_REASON
from campaign.audience.windows import Group, WindowPolicy
from campaign.domain import Claim, RecipientState, now
from campaign.ledger import sql
from campaign.ledger.rows import claim_from_row
from campaign.ledger.tables import recipients

S = RecipientState
# The calls to one number that may have put a message on its phone, by any campaign: accepted,
# unknown, or still in flight (no outcome yet); never dry runs, throttles or refusals. Ends with
# the number to compare with; `att.started_at` bounds the time. `messaged.attempts > 0` repeats
# ix_recipients_claimed_phone's condition so that SQLite uses it.
_MESSAGES_TO: Final = (
    "SELECT count(*) FROM recipients AS messaged "
    "JOIN attempts AS att ON att.recipient_id = messaged.id "
    "WHERE messaged.attempts > 0 AND NOT att.dry_run "
    "AND (att.outcome IS NULL OR att.outcome IN ('sent', 'unknown')) AND messaged.phone ="
)
# Written as literals, not parameters: SQLite uses a partial index only for a query whose WHERE
# repeats the index's condition word for word (ix_recipients_pending_groups).
_PENDING: Final[ColumnElement[str]] = literal_column(f"'{S.PENDING.value}'")


@dataclass(frozen=True)
class ClaimFilter:
    """What a claim must respect besides `state = 'pending'`."""

    open_groups: frozenset[Group] | None = None  # only these groups; None: no window to check
    cap: FrequencyCap | None = None  # None: no frequency cap


def claim_filter_sql(
    conn: Connection,
    p: sql.Params,
    claim_filter: ClaimFilter,
    at: datetime,
    table: str = "recipients",
) -> tuple[str, list[Any]]:
    """`claim_filter` as an SQL condition on `table` (the recipients table or its alias) and its
    arguments, for a hand-written statement using the placeholders of `p` (call it where the
    condition goes in the text: numbered styles count in order). "1 = 1" when there is nothing
    to check; "1 = 0" when no group is open."""
    parts: list[str] = []
    args: list[Any] = []
    if claim_filter.open_groups is not None:
        text, group_args = _groups_sql(claim_filter.open_groups, p, table)
        parts.append(text)
        args += group_args
    cap = claim_filter.cap
    if cap is not None:
        parts.append(f"({_MESSAGES_TO} {table}.phone AND att.started_at >= {p.one()}) < {p.one()}")
        args += [sql.dialect_of(conn).time(cap.since(at)), cap.max_messages]
    return (" AND ".join(parts) or "1 = 1"), args


def _groups_sql(groups: Iterable[Group], p: sql.Params, table: str) -> tuple[str, list[Any]]:
    """(country = ? AND tz_key IN (?, ...)) OR ...: NULL-safe, one term per country."""
    keys_by_country: dict[str | None, set[str | None]] = {}
    for key, country in groups:
        keys_by_country.setdefault(country, set()).add(key or None)
    if not keys_by_country:
        return "1 = 0", []
    terms: list[str] = []
    args: list[Any] = []
    for country in sorted(keys_by_country, key=lambda c: c or ""):
        if country is None:
            where = f"{table}.country IS NULL"
        else:
            where = f"{table}.country = {p.one()}"
            args.append(country)
        keys = keys_by_country[country]
        named = sorted(k for k in keys if k is not None)
        choices = []
        if named:
            choices.append(f"{table}.tz_key IN ({p.many(len(named))})")
            args += named
        if None in keys:
            choices.append(f"{table}.tz_key IS NULL")
        terms.append(f"({where} AND ({' OR '.join(choices)}))")
    return f"({' OR '.join(terms)})", args


def mark_suppressed(
    conn: Connection, campaign_id: int, ids: Sequence[int] | None, stamp: datetime
) -> set[int]:
    """pending -> suppressed for the recipients among `ids` (None: the whole campaign) whose number
    is on the do-not-send list, with the list's reason. Returns their ids."""
    p = sql.Params(conn.dialect.paramstyle)
    when = p.one()
    args: list[Any] = [sql.dialect_of(conn).time(stamp), campaign_id]
    only = ""
    if ids is not None:
        if not ids:
            return set()
        only = f" AND id IN ({p.many(len(ids))})"
        args += list(ids)
    rows = conn.exec_driver_sql(
        f"UPDATE recipients SET state = '{S.SUPPRESSED.value}', updated_at = {when}, "
        f"reason = (SELECT '{SUPPRESSED_REASON}' || s.reason FROM suppressions AS s "
        "WHERE s.phone = recipients.phone) "
        f"WHERE campaign_id = {p.one()}{only} AND state = '{S.PENDING.value}' "
        "AND EXISTS (SELECT 1 FROM suppressions AS listed WHERE listed.phone = recipients.phone) "
        "RETURNING id",
        tuple(args),
    ).all()
    return {r[0] for r in rows}


def pending_groups_query(campaign_id: int) -> Select[Any]:
    """The pending recipients' (zone key, country) groups: count and parts. On SQLite it reads
    ix_recipients_pending_groups alone (a covering index; tests/ledger/test_audience.py)."""
    return (
        select(
            recipients.c.tz_key,
            recipients.c.country,
            func.count(),
            func.coalesce(func.sum(recipients.c.parts), 0),
        )
        .where(recipients.c.campaign_id == campaign_id, recipients.c.state == _PENDING)
        .group_by(recipients.c.tz_key, recipients.c.country)
        .order_by(recipients.c.country, recipients.c.tz_key)
    )


class AudienceMixin:
    engine: Engine

    def pending_groups(self, campaign_id: int) -> list[GroupLoad]:
        """Pending recipients by (zone key, country): one GROUP BY on ix_recipients_pending_groups."""
        with self.engine.connect() as conn:
            rows = conn.execute(pending_groups_query(campaign_id)).all()
        return [GroupLoad(key, country, int(n), int(parts)) for key, country, n, parts in rows]

    def zone_samples(self, campaign_id: int) -> list[tuple[str, str | None, int, str]]:
        """Pending recipients whose zones came from their number, by (zone key, country): how
        many, and one number of each group (to tell which zones were dropped for them)."""
        from campaign.phones.timezones import FROM_COLUMN  # phonenumbers: loaded when used

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    recipients.c.tz_key,
                    recipients.c.country,
                    func.count(),
                    func.min(recipients.c.phone),
                )
                .where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.state == _PENDING,
                    recipients.c.tz_key.is_not(None),
                    recipients.c.tz_source != FROM_COLUMN,
                )
                .group_by(recipients.c.tz_key, recipients.c.country)
                .order_by(recipients.c.country, recipients.c.tz_key)
            ).all()
        return [(key, country, int(n), phone) for key, country, n, phone in rows]

    def claimable_pending(
        self,
        campaign_id: int,
        claim_filter: ClaimFilter,
        *,
        after_id: int,
        limit: int,
        at: datetime | None = None,
    ) -> list[Claim]:
        """Pending recipients after `after_id`, in id order, that `claim_filter` lets through at
        `at` (now), WITHOUT claiming them: `next_pending` with the window and the cap."""
        with self.engine.connect() as conn:
            p = sql.Params(conn.dialect.paramstyle)
            head = f"campaign_id = {p.one()} AND state = '{S.PENDING.value}' AND id > {p.one()}"
            condition, args = claim_filter_sql(conn, p, claim_filter, at or now())
            rows = conn.exec_driver_sql(
                "SELECT id, phone, country, fields, parts FROM recipients "
                f"WHERE {head} AND {condition} ORDER BY id LIMIT {p.one()}",
                (campaign_id, after_id, *args, limit),
            ).all()
        return [claim_from_row(r) for r in rows]

    def suppress_listed(self, campaign_id: int, ids: Sequence[int] | None = None) -> int:
        """pending -> suppressed for the campaign's recipients (or those of `ids`) whose number is
        on the do-not-send list now. Returns how many."""
        return len(self.suppress_among(campaign_id, ids))

    def suppress_among(self, campaign_id: int, ids: Sequence[int] | None) -> set[int]:
        """pending -> suppressed for those of `ids` (None: the whole campaign) whose number is on
        the do-not-send list now (the sender's candidates, before they take room in the rate).
        Returns their ids."""
        if ids is not None and not ids:
            return set()
        with self.engine.begin() as conn:
            return mark_suppressed(conn, campaign_id, ids, now())

    def expire_pending(
        self,
        campaign_id: int,
        reason: str,
        *,
        cap: FrequencyCap | None = None,
        cap_reason: str | None = None,
    ) -> int:
        """pending -> expired (the deadline passed); returns how many. With `cap`, those the
        frequency cap holds back now get `cap_reason` instead: why they were never sent."""
        expired = 0
        with self.engine.begin() as conn:
            if cap is not None and cap_reason is not None:
                p = sql.Params(conn.dialect.paramstyle)
                head = (
                    f"UPDATE recipients SET state = '{S.EXPIRED.value}', reason = {p.one()}, "
                    f"updated_at = {p.one()} WHERE campaign_id = {p.one()} "
                    f"AND state = '{S.PENDING.value}'"
                )
                stamp = now()
                under_cap, args = claim_filter_sql(conn, p, ClaimFilter(cap=cap), stamp)
                capped = conn.exec_driver_sql(
                    f"{head} AND NOT ({under_cap})",
                    (cap_reason, sql.dialect_of(conn).time(stamp), campaign_id, *args),
                )
                expired += int(capped.rowcount)
            result = conn.execute(
                update(recipients)
                .where(recipients.c.campaign_id == campaign_id, recipients.c.state == _PENDING)
                .values(state=S.EXPIRED.value, reason=reason, updated_at=now())
            )
        return expired + int(result.rowcount)

    def messages_to(self, phone: str, since: datetime) -> int:
        """Calls to `phone` started since `since`, by any campaign, that may have delivered a
        message: what the frequency cap counts."""
        with self.engine.connect() as conn:
            p = sql.Params(conn.dialect.paramstyle)
            return int(
                conn.exec_driver_sql(
                    f"{_MESSAGES_TO} {p.one()} AND att.started_at >= {p.one()}",
                    (phone, sql.dialect_of(conn).time(since)),
                ).scalar_one()
            )

    def refresh_held_reasons(
        self, campaign_id: int, policy: WindowPolicy, at: datetime | None = None
    ) -> int:
        """After the window changed (`edit`): each pending group that no window will let through
        gets its `held:` reason, and the others lose theirs. Returns how many are held."""
        at = at or now()
        held = 0
        groups = self.pending_groups(campaign_id)
        with self.engine.begin() as conn:
            for load in groups:
                reason = held_reason(load.zone_key, policy, load.country, at)
                in_group = (
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.state == _PENDING,
                    recipients.c.tz_key.is_(None)
                    if load.zone_key is None
                    else recipients.c.tz_key == load.zone_key,
                    recipients.c.country.is_(None)
                    if load.country is None
                    else recipients.c.country == load.country,
                )
                if reason is None:
                    conn.execute(
                        update(recipients)
                        .where(*in_group, recipients.c.reason.like(HELD_PREFIX + "%"))
                        .values(reason=None)
                    )
                    continue
                held += load.recipients
                # An unknown zone's reason, written at import, says why it is unknown: kept.
                rewritable: ColumnElement[bool] = recipients.c.reason.is_(None)
                if load.zone_key is not None:
                    rewritable = rewritable | recipients.c.reason.like(HELD_PREFIX + "%")
                conn.execute(update(recipients).where(*in_group, rewritable).values(reason=reason))
        return held
