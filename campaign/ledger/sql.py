"""The ledger's hand-written SQL, and every difference between the databases it runs on.

Most queries are SQLAlchemy Core, which renders them for any database. The few that run per message
or per imported row (claiming, settling, writing an import, recounting) are written here by hand, as
whole-batch statements handed straight to the driver (`exec_driver_sql`): no per-row statement and no
per-row parameter compilation, so each statement hands the GIL over once while the sender's threads
are busy, not once per row. Writing SQL by hand means owning what Core would hide; the differences
between the databases are all in this module:

| | SQLite (sqlite3) | PostgreSQL (psycopg 3, psycopg2) |
| --- | --- | --- |
| placeholders | `?` | `%s` (numbered `:1` / `$1` styles work too) |
| timestamps | naive UTC text, the format SQLAlchemy's DateTime stores | the aware datetime itself |
| `UPDATE ... RETURNING` | yes (SQLite 3.35 and later) | yes |
| booleans | the driver writes 0/1 | the driver writes true/false |

Another database gets PostgreSQL's rules (its driver adapts datetimes itself); only these two are tested.
The statements use only the columns of campaign.ledger.tables and plain `CASE`, `IN`, `COALESCE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from campaign.domain import RecipientState, Settlement
from campaign.ledger.errors import LedgerError

SENDING = RecipientState.SENDING.value
PENDING = RecipientState.PENDING.value
LIVE = "live"  # campaign.ledger.senders.SenderState.LIVE (that module imports this one's package)


@dataclass(frozen=True)
class Dialect:
    """What the hand-written statements do differently on one database."""

    name: str
    # SQLAlchemy stores a SQLite DateTime as naive UTC text; a raw statement must write the same text
    # (Core reads it back and compares it as text). PostgreSQL drivers take the datetime itself.
    timestamps_as_text: bool

    def time(self, value: datetime) -> Any:
        if self.timestamps_as_text:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value


SQLITE = Dialect("sqlite", timestamps_as_text=True)
POSTGRESQL = Dialect("postgresql", timestamps_as_text=False)
_DIALECTS = {d.name: d for d in (SQLITE, POSTGRESQL)}


def dialect_of(conn: Connection) -> Dialect:
    return _DIALECTS.get(conn.dialect.name, POSTGRESQL)


def placeholders(paramstyle: str, n: int, start: int = 1) -> list[str]:
    """`n` positional placeholders in the driver's style, numbered from `start` where numbered."""
    if paramstyle == "qmark":
        return ["?"] * n
    if paramstyle in ("format", "pyformat"):
        return ["%s"] * n
    if paramstyle == "numeric":
        return [f":{start + i}" for i in range(n)]
    if paramstyle == "numeric_dollar":
        return [f"${start + i}" for i in range(n)]
    raise LedgerError(f"unsupported database driver parameter style {paramstyle!r}")


class Params:
    """The placeholders of ONE statement, in order (numbered styles count from 1 per statement)."""

    def __init__(self, paramstyle: str) -> None:
        self.style = paramstyle
        self.n = 0

    def one(self) -> str:
        self.n += 1
        return placeholders(self.style, 1, start=self.n)[0]

    def many(self, count: int) -> str:
        marks = placeholders(self.style, count, start=self.n + 1)
        self.n += count
        return ", ".join(marks)

    def case(self, key: str, keys: Sequence[Any], values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`CASE key WHEN k1 THEN v1 ... END`, and its arguments in order."""
        whens = []
        args: list[Any] = []
        for k, v in zip(keys, values, strict=True):
            whens.append(f"WHEN {self.one()} THEN {self.one()}")
            args += (k, v)
        return f"CASE {key} {' '.join(whens)} END", args


# -- import and recount ------------------------------------------------------------------------------


def insert_recipients(
    conn: Connection, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """One executemany of `rows` (plain text and integers, in the order of `columns`) into recipients.

    A million rows at import: straight to the driver, without building a dict and compiling the
    parameters of each row."""
    marks = ", ".join(placeholders(conn.dialect.paramstyle, len(columns)))
    conn.exec_driver_sql(
        f"INSERT INTO recipients ({', '.join(columns)}) VALUES ({marks})", list(rows)
    )


def recount_pending(
    conn: Connection, updates: Sequence[tuple[str, str | None, int | None, str | None, int]]
) -> None:
    """(state, reason, parts, encoding, id) for each recipient, applied only while it is pending."""
    marks = placeholders(conn.dialect.paramstyle, 5)
    conn.exec_driver_sql(
        f"UPDATE recipients SET state = {marks[0]}, reason = {marks[1]}, "
        f"parts = {marks[2]}, encoding = {marks[3]} "
        f"WHERE id = {marks[4]} AND state = '{PENDING}'",
        list(updates),
    )


# -- the send path -----------------------------------------------------------------------------------


def claim_pending(
    conn: Connection,
    ids: Sequence[int],
    stamp: datetime,
    *,
    campaign_id: int,
    sender_id: int | None = None,
) -> set[int]:
    """pending -> sending for `ids`, owned by `sender_id`, counting the attempt; returns the ids that
    were still pending (and so are now this sender's).

    With a sender, nothing is claimed unless it is still `live` in the registry (one declared lost
    claims nothing more). On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED` in the same
    statement, so senders claiming at once never wait for each other and never share a row; the
    sender's registry row is read `FOR SHARE`, so it cannot be declared lost while its claim is
    being written (the declarer skips it and declares it on its next sweep, recovering the claim)."""
    p = Params(conn.dialect.paramstyle)
    stamp_arg = dialect_of(conn).time(stamp)
    if dialect_of(conn) is POSTGRESQL:
        sets = f"state = '{SENDING}', sender_id = {p.one()}, attempts = recipients.attempts + 1, "
        sets += f"updated_at = {p.one()}"
        args: list[Any] = [sender_id, stamp_arg]
        pick = (
            f"SELECT id FROM recipients WHERE campaign_id = {p.one()} AND state = '{PENDING}' "
            f"AND id IN ({p.many(len(ids))})"
        )
        args += [campaign_id, *ids]
        if sender_id is not None:
            pick += (
                f" AND EXISTS (SELECT 1 FROM senders WHERE senders.id = {p.one()} "
                f"AND senders.state = '{LIVE}' FOR SHARE)"
            )
            args.append(sender_id)
        pick += f" ORDER BY id LIMIT {p.one()} FOR UPDATE SKIP LOCKED"
        args.append(len(ids))
        rows = conn.exec_driver_sql(
            f"UPDATE recipients SET {sets} FROM ({pick}) AS picked "
            f"WHERE recipients.id = picked.id AND recipients.state = '{PENDING}' "
            "RETURNING recipients.id",
            tuple(args),
        ).all()
        return {r[0] for r in rows}
    # SQLite: one writer at a time, so the plain UPDATE is already atomic.
    sql = (
        f"UPDATE recipients SET state = '{SENDING}', sender_id = {p.one()}, "
        f"attempts = attempts + 1, updated_at = {p.one()} WHERE id IN ({p.many(len(ids))}) "
        f"AND state = '{PENDING}'"
    )
    args = [sender_id, stamp_arg, *ids]
    if sender_id is not None:
        sql += f" AND EXISTS (SELECT 1 FROM senders WHERE id = {p.one()} AND state = '{LIVE}')"
        args.append(sender_id)
    rows = conn.exec_driver_sql(sql + " RETURNING id", tuple(args)).all()
    return {r[0] for r in rows}


def insert_attempts(
    conn: Connection, rows: Sequence[tuple[int, int, int, bool]], stamp: datetime
) -> None:
    """(recipient_id, campaign_id, run_id, dry_run) per attempt, with no outcome yet: the call is
    about to be made."""
    p = Params(conn.dialect.paramstyle)
    started = dialect_of(conn).time(stamp)
    conn.exec_driver_sql(
        "INSERT INTO attempts (recipient_id, campaign_id, run_id, dry_run, started_at) "
        f"VALUES {', '.join(f'({p.many(5)})' for _ in rows)}",
        tuple(v for row in rows for v in (*row, started)),
    )


def settle_attempts(
    conn: Connection, run_id: int, settlements: Sequence[Settlement], stamp: datetime
) -> set[int]:
    """The outcome of each settlement onto its open attempt (no outcome yet) in run `run_id`.
    Returns the recipients whose attempt was still open: the only ones the run may move on."""
    p = Params(conn.dialect.paramstyle)
    ids = [s.recipient_id for s in settlements]
    outcome, outcome_args = p.case("recipient_id", ids, [s.outcome for s in settlements])
    mid, mid_args = p.case("recipient_id", ids, [s.message_id for s in settlements])
    why, why_args = p.case("recipient_id", ids, [s.reason for s in settlements])
    rows = conn.exec_driver_sql(
        f"UPDATE attempts SET outcome = {outcome}, message_id = {mid}, reason = {why}, "
        f"finished_at = {p.one()} WHERE run_id = {p.one()} AND outcome IS NULL "
        f"AND recipient_id IN ({p.many(len(ids))}) RETURNING recipient_id",
        (*outcome_args, *mid_args, *why_args, dialect_of(conn).time(stamp), run_id, *ids),
    ).all()
    return {r[0] for r in rows}


def settle_recipients(
    conn: Connection,
    settlements: Sequence[Settlement],
    stamp: datetime,
    *,
    sender_id: int | None = None,
) -> None:
    """Each settlement's state onto its recipient, only while the recipient is still `sending`
    and, with `sender_id`, still that sender's claim (fencing: a sender declared lost, whose claims
    became `unknown` and may have been claimed again, overwrites nothing).

    A message id already recorded is kept when the settlement has none."""
    final = [(s, s.state) for s in settlements if s.state is not None]
    if not final:
        return
    p = Params(conn.dialect.paramstyle)
    ids = [s.recipient_id for s, _ in final]
    state, state_args = p.case("id", ids, [state.value for _, state in final])
    mid, mid_args = p.case("id", ids, [s.message_id for s, _ in final])
    why, why_args = p.case("id", ids, [s.reason for s, _ in final])
    sql = (
        f"UPDATE recipients SET state = {state}, "
        f"message_id = COALESCE({mid}, message_id), reason = {why}, "
        f"updated_at = {p.one()} WHERE id IN ({p.many(len(ids))}) "
        f"AND state = '{SENDING}'"
    )
    args: list[Any] = [*state_args, *mid_args, *why_args, dialect_of(conn).time(stamp), *ids]
    if sender_id is not None:
        sql += f" AND sender_id = {p.one()}"
        args.append(sender_id)
    conn.exec_driver_sql(sql, tuple(args))
