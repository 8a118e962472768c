"""Reads for `status`, `estimate`, `report` and the send summary: counts, classes, rows, rates, runs.

Nothing here writes. `status` runs these while a sender writes, so they stay cheap on a large ledger:
counts come from the covering index on (campaign, state), and the rate looks at a bounded window of
the newest attempts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, case, func, select, type_coerce

from campaign.domain import Claim, PartsClass, RecipientState, RunInfo, StateCounts, aware, now
from campaign.ledger.rows import CLAIM_COLUMNS, claim_from_row, full_counts
from campaign.ledger.tables import attempts, imports, recipients, runs

S = RecipientState

# At most this many of the newest attempt rows are looked at for the current rate: far more than
# 10 s of sending at any MPS, and a primary-key range, so `status` stays fast however long the
# attempts table grows.
RATE_WINDOW_ROWS = 50_000


class ReadsMixin:
    engine: Engine

    def state_counts(self, campaign_id: int) -> StateCounts:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    recipients.c.state,
                    func.count(),
                    func.coalesce(func.sum(recipients.c.parts), 0),
                )
                .where(recipients.c.campaign_id == campaign_id)
                .group_by(recipients.c.state)
            ).all()
        return full_counts({s: n for s, n, _ in rows}, {s: int(p) for s, _, p in rows})

    def count_state(self, campaign_id: int, state: RecipientState) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        recipients.c.campaign_id == campaign_id, recipients.c.state == state.value
                    )
                ).scalar_one()
            )

    def parts_classes(
        self, campaign_id: int, states: Sequence[str] = (S.PENDING.value,)
    ) -> list[PartsClass]:
        """Recipients grouped by (country, encoding, parts): the whole input of an estimate."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    recipients.c.country,
                    recipients.c.encoding,
                    recipients.c.parts,
                    func.count(),
                )
                .where(recipients.c.campaign_id == campaign_id, recipients.c.state.in_(states))
                .group_by(recipients.c.country, recipients.c.encoding, recipients.c.parts)
                .order_by(recipients.c.country, recipients.c.encoding, recipients.c.parts)
            ).all()
        return [PartsClass(c, e, int(p or 0), int(n)) for c, e, p, n in rows]

    def called_classes(self, campaign_id: int) -> list[PartsClass]:
        """The campaign's calls that may have cost money, grouped by their recipient's (country,
        encoding, parts): accepted, `unknown` or still in flight, never dry runs, throttles or
        refusals (what the frequency cap counts). A recipient called again with
        `--retry-unknown` counts once for each call: its first one may have been charged."""
        may_cost = (attempts.c.outcome.is_(None)) | attempts.c.outcome.in_(
            (S.SENT.value, S.UNKNOWN.value)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    recipients.c.country, recipients.c.encoding, recipients.c.parts, func.count()
                )
                .select_from(attempts.join(recipients, recipients.c.id == attempts.c.recipient_id))
                .where(
                    # By run: ix_attempts_run finds the campaign's attempts.
                    attempts.c.run_id.in_(
                        select(runs.c.id).where(runs.c.campaign_id == campaign_id)
                    ),
                    attempts.c.dry_run.is_(False),
                    may_cost,
                )
                .group_by(recipients.c.country, recipients.c.encoding, recipients.c.parts)
                .order_by(recipients.c.country, recipients.c.encoding, recipients.c.parts)
            ).all()
        return [PartsClass(c, e, int(p or 0), int(n)) for c, e, p, n in rows]

    def sample_recipients(self, campaign_id: int, per_class: int = 1) -> list[Claim]:
        """Up to `per_class` pending recipients of each (country, encoding, parts) class."""
        out: list[Claim] = []
        with self.engine.connect() as conn:
            for cls in self.parts_classes(campaign_id):
                rows = conn.execute(
                    select(*CLAIM_COLUMNS)
                    .where(
                        recipients.c.campaign_id == campaign_id,
                        recipients.c.state == S.PENDING.value,
                        recipients.c.country.is_(None)
                        if cls.country is None
                        else recipients.c.country == cls.country,
                        recipients.c.encoding == cls.encoding,
                        recipients.c.parts == cls.parts,
                    )
                    .order_by(recipients.c.id)
                    .limit(per_class)
                ).all()
                out.extend(claim_from_row(r) for r in rows)
        return out

    def report_rows(
        self, campaign_id: int, chunk: int = 10_000, *, with_cells: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every recipient in input order (file by file, row by row), streamed; with `sent_at`
        (when the API accepted it), the delivery beside the state, the import's note, and with
        `with_cells` the input row's cells (campaign.importing.cells) and its import's id."""
        sent = attempts.c.outcome == S.SENT.value
        # The accepting call's end; for an `unknown` that an event later showed was accepted,
        # the start of its last call (when the message left, give or take the call).
        sent_at = (
            select(
                func.coalesce(
                    func.max(case((sent, attempts.c.finished_at))), func.max(attempts.c.started_at)
                )
            )
            .where(attempts.c.recipient_id == recipients.c.id, attempts.c.dry_run.is_(False))
            .correlate(recipients)
            .scalar_subquery()
        )
        columns = [
            imports.c.filename,
            recipients.c.row,
            recipients.c.raw_phone,
            recipients.c.phone,
            recipients.c.country,
            recipients.c.state,
            recipients.c.reason,
            recipients.c.parts,
            recipients.c.encoding,
            recipients.c.message_id,
            recipients.c.attempts,
            type_coerce(
                case((recipients.c.state == S.SENT.value, sent_at)), attempts.c.finished_at.type
            ).label("sent_at"),
            recipients.c.delivery,
            recipients.c.delivery_reason,
            recipients.c.delivery_at,
            recipients.c.charged,
            recipients.c.note,
        ]
        if with_cells:
            columns += [recipients.c.import_id, recipients.c.cells]
        query = (
            select(*columns)
            .join(imports, imports.c.id == recipients.c.import_id)
            .where(recipients.c.campaign_id == campaign_id)
            .order_by(recipients.c.import_id, recipients.c.row)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=chunk).execute(query)
            for row in result:
                yield row._asdict()

    def last_run(self, campaign_id: int) -> RunInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs).where(runs.c.campaign_id == campaign_id).order_by(runs.c.id.desc())
            ).first()
        if row is None:
            return None
        return RunInfo(
            row.id,
            row.pid,
            row.host,
            bool(row.dry_run),
            row.mps,
            aware(row.started_at),
            aware(row.ended_at),
            row.exit_code,
            row.note,
        )

    def recent_rate(self, campaign_id: int, seconds: float = 10.0) -> tuple[int, int]:
        """(messages, parts) accepted by the API in the last `seconds` (for status while sending)."""
        since = now() - timedelta(seconds=seconds)
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(attempts.c.id))).scalar() or 0
            row = conn.execute(
                select(func.count(), func.coalesce(func.sum(recipients.c.parts), 0))
                .select_from(attempts.join(recipients, recipients.c.id == attempts.c.recipient_id))
                .where(
                    attempts.c.id > newest - RATE_WINDOW_ROWS,
                    attempts.c.campaign_id == campaign_id,
                    attempts.c.outcome == "sent",
                    attempts.c.finished_at >= since,
                )
            ).one()
        return int(row[0]), int(row[1])

    def dry_run_results(self, run_id: int) -> list[dict[str, Any]]:
        """Each attempt of a (dry) run with its recipient's class and number, in claim order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    recipients.c.country,
                    recipients.c.encoding,
                    recipients.c.parts,
                    recipients.c.phone,
                    attempts.c.outcome,
                    attempts.c.reason,
                )
                .join(recipients, recipients.c.id == attempts.c.recipient_id)
                .where(attempts.c.run_id == run_id)
                .order_by(attempts.c.id)
            ).all()
        return [r._asdict() for r in rows]
