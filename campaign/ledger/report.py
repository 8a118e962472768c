"""What `report --html` reads: a campaign's figures aggregated in SQL, never a row per recipient
beyond a few examples per reason.

A handful of statements, whatever the campaign's size:
1. recipients grouped by (country, state, encoding, parts, delivery): the funnel, the countries,
   the message's parts mix and both spends come from these few hundred rows;
2. the campaign's runs (and, for a run that never recorded its end, when its last call returned);
3. per run, the parts accepted and the throttles answered in each time bucket (its attempts joined
   to their recipient's parts), the bucket width chosen by the caller from the run's length;
4. the failure reasons, (state, reason) with their counts and the first rows of each (window
   functions), and the same for the reasons of non-delivery that delivery events recorded.
campaign.reports.build turns them into the report's model; nothing here knows how it is drawn.

Time arithmetic is the one difference between the databases in this module (two compiled
functions at the end, in the style of campaign.ledger.engine's db_now): SQLite keeps a DateTime as
naive UTC text (julianday reads it), PostgreSQL as a timestamp (extract(epoch ...)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Float, Integer, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from campaign.domain import AttemptOutcome, RecipientState, aware
from campaign.ledger.tables import attempts, imports, recipients, runs

S = RecipientState
# States that are not a failure: sent, or still to send.
NOT_FAILED = (S.SENT.value, S.PENDING.value, S.SENDING.value)
UNDELIVERED = "undelivered"
JULIAN_DAY_OF_1970 = 2440587.5  # julianday('1970-01-01 00:00:00')
EDGE_SLACK_S = 0.0002


@dataclass(frozen=True)
class RecipientGroup:
    """One row of the recipients grouped by (country, state, encoding, parts, delivery)."""

    country: str | None
    state: str
    encoding: str | None
    parts: int  # of each recipient's message; 0 when not counted (an invalid row)
    delivery: str | None  # delivered, undelivered, None (awaiting, or never sent)
    recipients: int
    charged: float  # USD summed over the group, from delivery events (0.0 when none known)
    charged_recipients: int  # recipients with a charge known
    with_events: int  # recipients a delivery event has reached (delivery_at set)


@dataclass(frozen=True)
class RunRecord:
    id: int
    started_at: datetime
    ended_at: datetime | None  # None: still running, or died without recording its end
    last_call_at: datetime | None  # only looked up for a run without an end
    mps: float
    dry_run: bool
    exit_code: int | None
    note: str | None


@dataclass(frozen=True)
class ActivityRow:
    """What one run did in bucket number `bucket` (seconds since its start // the width)."""

    bucket: int
    parts: int  # parts accepted (attempts `sent`, each with its recipient's parts)
    throttles: int  # attempts answered with ThrottlingException


@dataclass(frozen=True)
class ReasonExample:
    row: int  # 1-based data row in its file
    phone: str  # E.164 when the number was valid, else as written in the file (unmasked)
    file: str


@dataclass(frozen=True)
class ReasonGroup:
    state: str  # a recipient state, or `undelivered`
    reason: str | None
    recipients: int
    examples: tuple[ReasonExample, ...]


class ReportMixin:
    engine: Engine

    def report_groups(self, campaign_id: int) -> list[RecipientGroup]:
        r = recipients.c
        group = (r.country, r.state, r.encoding, r.parts, r.delivery)
        query = (
            select(
                *group,
                func.count(),
                func.coalesce(func.sum(r.charged), 0.0),
                func.count(r.charged),
                func.count(r.delivery_at),
            )
            .where(r.campaign_id == campaign_id)
            .group_by(*group)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RecipientGroup(c, s, e, int(p or 0), d, int(n), float(ch), int(chn), int(ev))
            for c, s, e, p, d, n, ch, chn, ev in rows
        ]

    def report_runs(self, campaign_id: int) -> list[RunRecord]:
        """The campaign's runs in start order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(runs).where(runs.c.campaign_id == campaign_id).order_by(runs.c.id)
            ).all()
            last_calls = {row.id: _last_call(conn, row.id) for row in rows if row.ended_at is None}
        return [
            RunRecord(
                id=row.id,
                started_at=_aware(row.started_at),
                ended_at=aware(row.ended_at),
                last_call_at=last_calls.get(row.id),
                mps=float(row.mps),
                dry_run=bool(row.dry_run),
                exit_code=row.exit_code,
                note=row.note,
            )
            for row in rows
        ]

    def report_run_activity(
        self, run_id: int, started_at: datetime, bucket_seconds: float
    ) -> list[ActivityRow]:
        """Parts accepted and throttles of one run, per bucket of `bucket_seconds` counted from
        `started_at` (when each call returned), in bucket order; empty buckets are left out."""
        a = attempts.c
        # SQLite's julianday() counts whole milliseconds and its float carries ~0.05 ms of
        # rounding: a call returning exactly on a bucket's edge must not fall into the bucket
        # before it, so the edges are moved 0.2 ms earlier.
        start = started_at.timestamp() - EDGE_SLACK_S
        offset = _epoch_seconds(a.finished_at) - literal(start, Float)
        bucket = _floor(offset / literal(bucket_seconds, Float)).label("bucket")
        sent = a.outcome == AttemptOutcome.SENT.value
        query = (
            select(
                bucket,
                func.sum(func.coalesce(recipients.c.parts, 1)).filter(sent),
                func.count().filter(a.outcome == AttemptOutcome.THROTTLED.value),
            )
            .select_from(attempts.join(recipients, recipients.c.id == a.recipient_id))
            .where(
                a.run_id == run_id,
                a.finished_at.is_not(None),
                a.outcome.in_((AttemptOutcome.SENT.value, AttemptOutcome.THROTTLED.value)),
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [ActivityRow(max(0, int(b)), int(p or 0), int(t or 0)) for b, p, t in rows]

    def report_failure_reasons(
        self, campaign_id: int, states: Sequence[str], examples: int = 3
    ) -> list[ReasonGroup]:
        """Recipients in `states` (those neither sent nor still to send that report_groups found),
        by (state, reason), most frequent first. Naming the states lets the (campaign, state)
        index find their rows: `NOT IN (sent, ...)` read every row of the campaign, 3x slower."""
        failed = [s for s in states if s not in NOT_FAILED]
        if not failed:
            return []
        r = recipients.c
        return self._reason_groups(
            (r.campaign_id == campaign_id, r.state.in_(failed)),
            r.state,
            r.reason,
            examples,
        )

    def report_non_delivery_reasons(self, campaign_id: int, examples: int = 3) -> list[ReasonGroup]:
        """Sent recipients that delivery events say were not delivered, by reason."""
        r = recipients.c
        return self._reason_groups(
            (r.campaign_id == campaign_id, r.state == S.SENT.value, r.delivery == UNDELIVERED),
            r.delivery,
            r.delivery_reason,
            examples,
        )

    def _reason_groups(
        self,
        where: Sequence[ColumnElement[bool]],
        state: ColumnElement[Any],
        reason: ColumnElement[Any],
        examples: int,
    ) -> list[ReasonGroup]:
        # One pass: each row learns its group's size and its rank in the group (window
        # functions); only the first `examples` rows of each group leave the database.
        r = recipients.c
        partition = (state, reason)
        ranked = (
            select(
                state.label("state"),
                reason.label("reason"),
                func.count().over(partition_by=partition).label("n"),
                func.row_number().over(partition_by=partition, order_by=r.id).label("k"),
                r.row,
                func.coalesce(r.phone, r.raw_phone).label("phone"),
                r.import_id,
            )
            .where(*where)
            .subquery()
        )
        query = (
            select(
                ranked.c.state,
                ranked.c.reason,
                ranked.c.n,
                ranked.c.row,
                ranked.c.phone,
                imports.c.filename,
            )
            .join(imports, imports.c.id == ranked.c.import_id)
            .where(ranked.c.k <= max(examples, 1))
            .order_by(ranked.c.n.desc(), ranked.c.state, ranked.c.reason, ranked.c.k)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        groups: dict[tuple[str, str | None], tuple[int, list[ReasonExample]]] = {}
        for st, why, n, row, phone, filename in rows:
            _, found = groups.setdefault((st, why), (int(n), []))
            if len(found) < examples:
                found.append(ReasonExample(int(row), str(phone or ""), str(filename)))
        return [ReasonGroup(st, why, n, tuple(found)) for (st, why), (n, found) in groups.items()]


def _last_call(conn: Any, run_id: int) -> datetime | None:
    a = attempts.c
    value = conn.execute(
        select(func.max(func.coalesce(a.finished_at, a.started_at))).where(a.run_id == run_id)
    ).scalar()
    if isinstance(value, str):  # SQLite: max() of the stored text loses the DateTime type
        value = datetime.fromisoformat(value)
    return aware(value)


def _aware(value: datetime) -> datetime:
    result = aware(value)
    assert result is not None
    return result


class _epoch_seconds(FunctionElement[float]):
    """Seconds since 1970 of a DateTime column, as a float."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(_epoch_seconds)
def _epoch_seconds_default(element: _epoch_seconds, compiler: Any, **kw: Any) -> str:
    return (
        f"CAST(extract(epoch FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"
    )


@compiles(_epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: _epoch_seconds, compiler: Any, **kw: Any) -> str:
    # The naive UTC text SQLAlchemy stores, read by julianday (fractions of a second included).
    column = compiler.process(element.clauses, **kw)
    return f"((julianday({column}) - {JULIAN_DAY_OF_1970}) * 86400.0)"


class _floor(FunctionElement[int]):
    """floor() of a non-negative number, as an integer."""

    type = Integer()
    name = "floor_int"
    inherit_cache = True


@compiles(_floor)
def _floor_default(element: _floor, compiler: Any, **kw: Any) -> str:
    # PostgreSQL's CAST rounds: floor first.
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(_floor, "sqlite")
def _floor_sqlite(element: _floor, compiler: Any, **kw: Any) -> str:
    # SQLite's CAST truncates, the same as floor() for the numbers here (never negative); and its
    # floor() exists only when built with the math functions.
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"
