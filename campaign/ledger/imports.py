"""Imports: one CSV file's recipients written in one transaction, and what later imports and
`estimate` need to know about earlier ones (their files, their phone numbers, their UCS-2 characters)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, func, insert, select, update

from campaign.domain import ImportRecord, RecipientState, Ucs2Character, aware, now
from campaign.ledger import sql
from campaign.ledger.tables import imports, recipients, ucs2_characters

if TYPE_CHECKING:
    import psycopg


class ImportsMixin:
    engine: Engine

    def find_import(self, campaign_id: int, sha256: str) -> ImportRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(imports).where(
                    imports.c.campaign_id == campaign_id, imports.c.sha256 == sha256
                )
            ).first()
        return None if row is None else _import_record(row)

    def list_imports(self, campaign_id: int) -> list[ImportRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(imports).where(imports.c.campaign_id == campaign_id).order_by(imports.c.id)
            ).all()
        return [_import_record(r) for r in rows]

    def import_columns(self, campaign_id: int) -> dict[int, list[str]]:
        """Each import's header row, in file order (what `recipients.cells` are in the order of)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(imports.c.id, imports.c.columns)
                .where(imports.c.campaign_id == campaign_id)
                .order_by(imports.c.id)
            ).all()
        return {import_id: list(json.loads(names)) for import_id, names in rows}

    def known_phones(self, campaign_id: int) -> set[str]:
        """Every E.164 number already in the campaign (for duplicate detection across imports)."""
        with self.engine.connect() as conn:
            result = conn.execute(
                select(recipients.c.phone).where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.phone.is_not(None),
                    recipients.c.state != RecipientState.DUPLICATE.value,
                )
            )
            return {phone for (phone,) in result}

    def write_import(
        self,
        campaign_id: int,
        *,
        filename: str,
        sha256: str,
        phone_column: str,
        columns: Sequence[str],
        row_columns: Sequence[str],
        batches: Iterable[list[tuple[Any, ...]]],
        finish: Any,
    ) -> ImportRecord:
        """Write one import in ONE transaction: an error (or Ctrl-C) anywhere while `batches` is
        consumed rolls everything back, so a failed import leaves the ledger as it was.

        Each batch is a list of tuples, one per recipient, in the order of `row_columns`.
        `finish()` is called after the last batch and returns (accepted, duplicates, invalid,
        ucs2 rows)."""
        with self.engine.begin() as conn:
            import_id = conn.execute(
                insert(imports).values(
                    campaign_id=campaign_id,
                    filename=filename,
                    sha256=sha256,
                    rows=0,
                    accepted=0,
                    duplicates=0,
                    invalid=0,
                    phone_column=phone_column,
                    columns=json.dumps(list(columns)),
                    created_at=now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            names = ("campaign_id", "import_id", *row_columns)
            head = (campaign_id, import_id)
            total = 0
            write = _copy_recipients if _can_copy(conn) else sql.insert_recipients
            for batch in batches:
                if not batch:
                    continue
                write(conn, names, [head + row for row in batch])
                total += len(batch)
            accepted, duplicates, invalid, ucs2_rows = finish()
            conn.execute(
                update(imports)
                .where(imports.c.id == import_id)
                .values(rows=total, accepted=accepted, duplicates=duplicates, invalid=invalid)
            )
            if ucs2_rows:
                conn.execute(
                    insert(ucs2_characters),
                    [{**r, "campaign_id": campaign_id, "import_id": import_id} for r in ucs2_rows],
                )
            record = conn.execute(select(imports).where(imports.c.id == import_id)).one()
        return _import_record(record)

    def ucs2_report(self, campaign_id: int) -> list[Ucs2Character]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    ucs2_characters.c.character,
                    ucs2_characters.c.source,
                    func.sum(ucs2_characters.c.rows),
                    func.sum(ucs2_characters.c.extra_parts),
                )
                .where(ucs2_characters.c.campaign_id == campaign_id)
                .group_by(ucs2_characters.c.character, ucs2_characters.c.source)
                .order_by(func.sum(ucs2_characters.c.extra_parts).desc())
            ).all()
        return [Ucs2Character(c, s, int(r), int(p)) for c, s, r, p in rows]


def _can_copy(conn: Connection) -> bool:
    """PostgreSQL through psycopg 3: recipients go in by COPY."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _copy_recipients(
    conn: Connection, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """`rows` into recipients with one COPY FROM STDIN, in the caller's transaction: PostgreSQL
    takes a batch as one stream instead of a statement per row (100,000 rows: 2.1 s against 3.5 s
    for executemany's pipeline, most of either spent updating the indexes), and no parameter
    limit applies. psycopg writes each value
    in COPY's text form (escaping tabs, newlines and backslashes in the cells)."""
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    names = ", ".join(f'"{c}"' for c in columns)  # `row` is a keyword to PostgreSQL
    with dbapi.cursor() as cursor, cursor.copy(f"COPY recipients ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _import_record(row: Any) -> ImportRecord:
    return ImportRecord(
        row.id,
        row.filename,
        row.sha256,
        row.rows,
        row.accepted,
        row.duplicates,
        row.invalid,
        aware(row.created_at),
    )
