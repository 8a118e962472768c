"""One MPS per origination identity, shared by every sender that uses it (GCRA in the database).

A `rate_limits` row per identity holds its MPS and a "theoretical arrival time" `tat` (seconds since
1970 on the DATABASE's clock). A sender books its next few parts with one short UPDATE and gets back
*when* it may send them, rather than a refusal:

    UPDATE rate_limits SET tat = greatest(tat, now) + parts / mps
    WHERE identity = :identity AND greatest(tat, now) <= now + horizon
    RETURNING tat, mps, now            -- the parts' slots are [tat - parts / mps, tat)

No row back means the schedule is already booked `horizon` seconds ahead: ask again a little later.
The row lock serialises bookings, and `tat` only moves forward, so the slots handed to all senders
together never come closer than 1/mps apart: the identity's MPS holds jointly, in parts, however
many senders (of however many campaigns) share it. A sender that dies leaves its booked slots
unused: a crash wastes a little capacity, it never causes an overshoot.

`SharedRate` is the client a sender uses: it books about 50 ms of parts at a time (so the row sees
~20 short UPDATEs per second whatever the MPS), turns the database's slot times into the local
monotonic clock with an offset estimated from each booking's round trip (host clocks never matter),
and hands the slots out with the same `delay_for` / `try_acquire` / `acquire` / `set_rate`
interface as `campaign.sending.pacing.PartsRateLimiter`. On SQLite the same code works for the one
sender a SQLite ledger allows.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Float, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from campaign.ledger.engine import db_epoch, db_now, transaction
from campaign.ledger.tables import rate_limits

# Book this many seconds' worth of parts at a time: few enough round trips per second (~20) for
# any MPS, and little enough capacity lost when a sender stops with slots it did not use.
CHUNK_SECONDS = 0.05
# How far ahead the schedule may be booked. Each sender holds at most about one chunk ahead, so
# this leaves room for ~40 senders on one identity before anyone is told "full".
HORIZON_SECONDS = 2.0
# A slot may be used this late; older ones are dropped unused. A part sent later than its slot adds
# to the parts of a later moment: dropping it bounds that, even when a sender is starved of CPU for
# a while (its rate then drops, nobody else's rises). The service's bucket holds about a second of
# parts, so 200 ms late never gets anyone throttled; 25 ms (the sender's claim bursts alone) lost a
# third of the rate on a busy 2-core machine (measured: 58 of 150 parts/s waking every 60 ms).
GRACE_SECONDS = 0.2
# Clock offset: the booking with the shortest round trip among the last few is the best estimate.
OFFSET_SAMPLES = 16
_EPSILON = 1e-9
_T = TypeVar("_T")


class greatest(FunctionElement[float]):
    """The larger of two numbers (PostgreSQL's greatest(), SQLite's two-argument max())."""

    type = Float()
    name = "greatest"
    inherit_cache = True


@compiles(greatest)
def _greatest(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class Booking:
    """Slots for `parts` parts, evenly spaced over [start_at, end_at) on the database's clock
    (seconds since 1970); `db_now` is that clock when the booking was made."""

    parts: int
    start_at: float
    end_at: float
    db_now: float
    mps: float


def set_rate(bind: Engine | Connection, identity: str, mps: float) -> None:
    """Create the identity's schedule, or change its MPS from the next booking on (the throttle
    control's lever: every sender on the identity follows)."""
    _upsert(bind, identity, _check_mps(mps), replace=True)


def ensure_rate(bind: Engine | Connection, identity: str, mps: float) -> float:
    """Create the identity's schedule at `mps` unless it exists; returns the MPS it has (a sender
    joining others keeps their rate)."""
    _upsert(bind, identity, _check_mps(mps), replace=False)
    rate = get_rate(bind, identity)
    assert rate is not None  # just created, and schedules are never deleted
    return rate


def get_rate(bind: Engine | Connection, identity: str) -> float | None:
    with transaction(bind) as conn:
        return conn.execute(
            select(rate_limits.c.mps).where(rate_limits.c.identity == identity)
        ).scalar()


def _upsert(bind: Engine | Connection, identity: str, mps: float, *, replace: bool) -> None:
    with transaction(bind) as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = dialect_insert(rate_limits).values(
            identity=identity, mps=mps, tat=0.0, updated_at=db_now()
        )
        if replace:
            stmt = stmt.on_conflict_do_update(
                index_elements=[rate_limits.c.identity],
                set_={"mps": stmt.excluded.mps, "updated_at": db_now()},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[rate_limits.c.identity])
        conn.execute(stmt)


def book(
    bind: Engine | Connection, identity: str, parts: int, *, horizon: float = HORIZON_SECONDS
) -> Booking | None:
    """Book the next `parts` slots of the identity's schedule; None if it is booked more than
    `horizon` seconds ahead (ask again later). Raises LookupError for an unknown identity."""
    if parts < 1:
        raise ValueError(f"book at least one part, not {parts!r}")
    share = literal(float(parts), Float) / rate_limits.c.mps
    start = greatest(rate_limits.c.tat, db_epoch())
    with transaction(bind) as conn:
        row = conn.execute(
            update(rate_limits)
            .where(
                rate_limits.c.identity == identity,
                start <= db_epoch() + literal(float(horizon), Float),
            )
            .values(tat=start + share)
            .returning(rate_limits.c.tat, rate_limits.c.mps, db_epoch().label("db_now"))
        ).first()
        if row is None:
            if get_rate(conn, identity) is None:
                raise LookupError(f"no rate schedule for origination identity {identity!r}")
            return None
    end_at, mps = float(row.tat), float(row.mps)
    return Booking(parts, end_at - parts / mps, end_at, float(row.db_now), mps)


def _check_mps(mps: float) -> float:
    if not math.isfinite(mps) or mps <= 0:
        raise ValueError(f"MPS must be a positive number of parts per second, not {mps!r}")
    return float(mps)


class SharedRate:
    """A sender's side of one identity's shared schedule: parts slots, booked ~50 ms at a time.

    A message of k parts takes the next k slots and may go at the time of the last one (never a
    part before its slot). Thread-safe; the clock and sleep are injectable for tests."""

    def __init__(
        self,
        engine: Engine,
        identity: str,
        mps: float,
        *,
        chunk_seconds: float = CHUNK_SECONDS,
        horizon: float = HORIZON_SECONDS,
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self.identity = identity
        self._chunk_seconds = chunk_seconds
        self._horizon = horizon
        self._grace = grace
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()  # local monotonic times, ascending
        self._offsets: deque[tuple[float, float]] = deque(maxlen=OFFSET_SAMPLES)
        self._rate = self._with_connection(lambda conn: ensure_rate(conn, identity, mps))
        self.booked_parts = 0
        self.wasted_parts = 0  # booked, then dropped as too late to use

    @property
    def rate(self) -> float:
        """The identity's shared MPS, as of the last booking."""
        return self._rate

    @property
    def clock_offset(self) -> float:
        """Estimated database clock minus the local monotonic clock, in seconds."""
        if not self._offsets:
            return 0.0
        return min(self._offsets)[1]

    def set_rate(self, mps: float) -> None:
        """Change the shared MPS for every sender on this identity, from their next booking."""
        with self._lock:
            self._with_connection(lambda conn: set_rate(conn, self.identity, mps))
            self._rate = float(mps)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _with_connection(self, work: Callable[[Connection], _T]) -> _T:
        """`work` on this limiter's own connection, in autocommit mode: a booking is then one
        round trip (no BEGIN/COMMIT, no pool ping), which also keeps the clock offset estimate
        tight. A failed connection is dropped and a new one opened next time."""
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
        try:
            return work(self._connection)
        except DBAPIError:
            self._connection.close()
            self._connection = None
            raise

    def delay_for(self, parts: int) -> float:
        """Seconds to wait before a message of `parts` parts may go (0.0 if it may go now)."""
        with self._lock:
            now = self._ready(parts)
            if now is None:
                return self._chunk_seconds  # schedule full: ask again shortly
            return max(0.0, self._slots[parts - 1] - now)

    def try_acquire(self, parts: int) -> bool:
        """Take the slots of a `parts`-part message if its last slot has come; False otherwise."""
        return self._take(parts) is not None

    def acquire(self, parts: int) -> float:
        """Sleep until a message of `parts` parts may go, and take its slots. Returns the local
        time of its last slot (what the shared schedule granted, whenever the caller runs)."""
        while (slot := self._take(parts)) is None:
            self._sleep(max(self.delay_for(parts), 0.001))
        return slot

    def _take(self, parts: int) -> float | None:
        """The slots of a `parts`-part message, taken if its last slot has come: that slot's local
        time; None when it has not come."""
        with self._lock:
            now = self._ready(parts)
            if now is None or self._slots[parts - 1] > now + _EPSILON:
                return None
            last = self._slots[parts - 1]
            for _ in range(parts):
                self._slots.popleft()
            return last

    def refund(self, parts: int) -> None:
        """Give back the slots of a message that was not sent after all (another sender claimed
        its recipient first): the next message may use them at once, within the grace period."""
        if parts < 1:
            return
        with self._lock:
            now = self._clock()
            self._slots.extendleft([now] * parts)

    def _ready(self, parts: int) -> float | None:
        """Drop slots too late to use and book until `parts` slots are queued; the local time
        then, or None when the schedule is full."""
        if parts < 1:
            raise ValueError(f"a message has at least one part, not {parts!r}")
        now = self._clock()
        # The message's last slot must not be stale: while it is, its first slot is useless.
        while self._slots and self._slots[min(parts, len(self._slots)) - 1] + self._grace < now:
            self._slots.popleft()
            self.wasted_parts += 1
        # Booked a chunk ahead, not only when empty: the next booking then starts where this one
        # ends (`tat` still ahead of the database's now), so no capacity is lost between them.
        while len(self._slots) < parts or self._slots[-1] < now + self._chunk_seconds:
            wanted = max(parts - len(self._slots), round(self._rate * self._chunk_seconds), 1)
            if not self._book(wanted):
                if len(self._slots) >= parts:
                    break  # booked far enough ahead by others: what is queued will do
                return None
        return self._clock()

    def _book(self, parts: int) -> bool:
        def booking_for(conn: Connection) -> tuple[float, Booking | None, float]:
            sent = self._clock()
            booking = book(conn, self.identity, parts, horizon=self._horizon)
            return sent, booking, self._clock()

        sent, booking, back = self._with_connection(booking_for)
        if booking is None:
            return False
        # The database read its clock somewhere in the round trip: its middle is the best guess.
        self._offsets.append((back - sent, booking.db_now - (sent + back) / 2))
        offset = self.clock_offset
        step = (booking.end_at - booking.start_at) / parts
        self._slots.extend(booking.start_at + i * step - offset for i in range(parts))
        self._rate = booking.mps
        self.booked_parts += parts
        return True
