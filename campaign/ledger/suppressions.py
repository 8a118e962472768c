"""The account-wide do-not-send list: numbers no campaign of this ledger ever messages.

Numbers arrive normalized (campaign.audience.suppression.normalize_list), so they match the
recipients' E.164 text byte for byte. Each entry keeps its reason and where it came from:
`user` (`campaign suppress add`) or `aws-opt-out:<list ARN>` (`campaign optouts sync`). Imports read
the whole list once (`suppressed_phones`); the claim-time check is in campaign.ledger.audience.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, Engine, delete, func, select

from campaign.domain import Suppression, aware, now
from campaign.ledger import sql
from campaign.ledger.tables import suppressions

SOURCE_USER: Final = "user"
AWS_OPT_OUT_SOURCE: Final = "aws-opt-out:"  # + the opt-out list's ARN (or its name)
_CHUNK: Final = 500  # numbers per statement: well under every driver's parameter limit
_ARRAY_CHUNK: Final = 5_000  # numbers per PostgreSQL array parameter (one parameter a statement)


@dataclass(frozen=True)
class SuppressionChange:
    """What an add, a remove or a sync did to the list."""

    added: int = 0
    already: int = 0  # given, but already on the list (its first reason and source are kept)
    removed: int = 0
    missing: int = 0  # given to remove, but not on the list


class SuppressionsMixin:
    engine: Engine

    def add_suppressions(
        self, numbers: Sequence[str], reason: str, source: str = SOURCE_USER
    ) -> SuppressionChange:
        """Put E.164 `numbers` on the list, in one transaction. A number already there keeps its
        first reason and source: a sync never relabels what the user listed, nor the reverse."""
        with self.engine.begin() as conn:
            added = _insert_new(conn, _unique(numbers), reason, source, now())
        return SuppressionChange(added=added, already=len(_unique(numbers)) - added)

    def remove_suppressions(self, numbers: Sequence[str]) -> SuppressionChange:
        unique = _unique(numbers)
        removed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(unique):
                result = conn.execute(delete(suppressions).where(suppressions.c.phone.in_(chunk)))
                removed += int(result.rowcount)
        return SuppressionChange(removed=removed, missing=len(unique) - removed)

    def sync_suppressions(
        self, source: str, numbers: Sequence[str], reason: str
    ) -> SuppressionChange:
        """Make the entries from `source` exactly `numbers` (a complete copy of that source, e.g.
        an AWS opt-out list read to its last page): new ones added, ones the source no longer
        lists removed. Entries from other sources are never touched."""
        wanted = set(_unique(numbers))
        with self.engine.begin() as conn:
            have = set(
                conn.execute(
                    select(suppressions.c.phone).where(suppressions.c.source == source)
                ).scalars()
            )
            added = _insert_new(
                conn, [n for n in _unique(numbers) if n not in have], reason, source, now()
            )
            gone = sorted(have - wanted)
            for chunk in _chunks(gone):
                conn.execute(
                    delete(suppressions).where(
                        suppressions.c.source == source, suppressions.c.phone.in_(chunk)
                    )
                )
        return SuppressionChange(added=added, already=len(wanted) - added, removed=len(gone))

    def list_suppressions(self, chunk: int = 10_000) -> Iterator[Suppression]:
        """Every entry, by number, streamed."""
        query = select(suppressions).order_by(suppressions.c.phone)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=chunk).execute(query):
                yield Suppression(row.phone, row.reason, row.source, aware(row.added_at))

    def count_suppressions(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(suppressions)).scalar_one())

    def suppressed_phones(self) -> dict[str, str]:
        """Number -> reason, the whole list: an import checks each of its rows against it."""
        reasons: dict[str, str] = {}  # one string object per distinct reason, not per number
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=10_000).execute(
                select(suppressions.c.phone, suppressions.c.reason)
            )
            return {phone: reasons.setdefault(reason, reason) for phone, reason in result}


def _unique(numbers: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(numbers))


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _insert_new(
    conn: Connection, numbers: Sequence[str], reason: str, source: str, stamp: datetime
) -> int:
    """Insert the numbers not on the list yet; returns how many. One INSERT per chunk whose
    RETURNING names only the rows it added: ON CONFLICT DO NOTHING (SQLite and PostgreSQL alike)
    skips a number already listed, or added by a concurrent command, without failing the batch.
    No read of the list first: on PostgreSQL a lookup of the chunk in a table growing inside this
    transaction could be planned as a scan of the whole table per chunk.

    PostgreSQL takes a chunk as ONE array parameter (`unnest`): 100,000 numbers in 2.4 s against
    4.9 s as multi-row VALUES. SQLite gets VALUES rows, 4 parameters a number: 2,000 a statement,
    far under its limit of 32,766."""
    added = 0
    when = sql.dialect_of(conn).time(stamp)
    if conn.dialect.name == "postgresql":
        p = sql.placeholders(conn.dialect.paramstyle, 4)
        for start in range(0, len(numbers), _ARRAY_CHUNK):
            rows = conn.exec_driver_sql(
                "INSERT INTO suppressions (phone, reason, source, added_at) "
                f"SELECT unnest(CAST({p[0]} AS TEXT[])), {p[1]}, {p[2]}, {p[3]} "
                "ON CONFLICT (phone) DO NOTHING RETURNING phone",
                (list(numbers[start : start + _ARRAY_CHUNK]), reason, source, when),
            ).all()
            added += len(rows)
        return added
    for chunk in _chunks(numbers):
        params = sql.Params(conn.dialect.paramstyle)
        values = ", ".join(f"({params.many(4)})" for _ in chunk)
        rows = conn.exec_driver_sql(
            f"INSERT INTO suppressions (phone, reason, source, added_at) VALUES {values} "
            "ON CONFLICT (phone) DO NOTHING RETURNING phone",
            tuple(v for n in chunk for v in (n, reason, source, when)),
        ).all()
        added += len(rows)
    return added
