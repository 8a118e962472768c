"""The store: every query and state transition of the ledger lives here.

Other modules never build SQL. The sender's guarantee rests on three transitions, each committed
before the next step happens: `claim` (pending -> sending, plus an attempt row) before the API call,
`settle` (sending -> sent/failed/opted_out/unknown) when the call returns, and `recover_orphans`
(sending -> unknown) when a new sender finds claims left by one that died.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from campaign.domain import (
    Campaign,
    CampaignSpec,
    Claim,
    ImportRecord,
    PartsClass,
    RunInfo,
    Settlement,
    StateCounts,
    Ucs2Character,
    aware,
    now,
)
from campaign.errors import UserError
from campaign.ledger.tables import (
    ALL_STATES,
    RecipientState,
    attempts,
    campaigns,
    imports,
    recipients,
    runs,
    ucs2_characters,
)

S = RecipientState
# What a Claim is built from (see _claim).
_CLAIM_COLUMNS = (
    recipients.c.id,
    recipients.c.phone,
    recipients.c.country,
    recipients.c.fields,
    recipients.c.parts,
)


class LedgerError(UserError):
    """A problem the user can fix; the message is one line."""


class CampaignNotFound(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no campaign named {name!r} (see `campaign list`)")


class CampaignExists(LedgerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a campaign named {name!r} already exists")


class SenderBusy(LedgerError):
    """Another sender owns the campaign and is alive."""


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- campaigns -------------------------------------------------------------------------------

    def create_campaign(self, spec: CampaignSpec) -> Campaign:
        stamp = now()
        values = {
            "name": spec.name,
            "template": spec.template,
            "origination_identity": spec.origination_identity,
            "message_type": spec.message_type,
            "configuration_set": spec.configuration_set,
            "max_price": spec.max_price,
            "ttl": spec.ttl,
            "keyword": spec.keyword,
            "protect_configuration_id": spec.protect_configuration_id,
            "context": json.dumps(dict(spec.context), sort_keys=True),
            "country_parameters": json.dumps(dict(spec.country_parameters), sort_keys=True),
            "message_feedback": spec.message_feedback,
            "gsm_safe": spec.gsm_safe,
            "created_at": stamp,
            "updated_at": stamp,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(campaigns).values(**values))
        except IntegrityError:
            raise CampaignExists(spec.name) from None
        return self.get_campaign(spec.name)

    def get_campaign(self, name: str) -> Campaign:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
        if row is None:
            raise CampaignNotFound(name)
        return Campaign.from_row(row)

    def list_campaigns(self) -> list[tuple[Campaign, StateCounts]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(campaigns).order_by(campaigns.c.id)).all()
            tallies = conn.execute(
                select(
                    recipients.c.campaign_id,
                    recipients.c.state,
                    func.count(),
                    func.coalesce(func.sum(recipients.c.parts), 0),
                ).group_by(recipients.c.campaign_id, recipients.c.state)
            ).all()
        per: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
        for campaign_id, state, n, parts in tallies:
            counts, part_counts = per.setdefault(campaign_id, ({}, {}))
            counts[state] = n
            part_counts[state] = int(parts)
        result = []
        for row in rows:
            counts, part_counts = per.get(row.id, ({}, {}))
            result.append((Campaign.from_row(row), _full_counts(counts, part_counts)))
        return result

    def update_campaign(self, campaign_id: int, **values: Any) -> None:
        for key in ("context", "country_parameters"):
            if key in values:
                values[key] = json.dumps(dict(values[key]), sort_keys=True)
        values["updated_at"] = now()
        with self.engine.begin() as conn:
            conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))

    def sender_alive(self, campaign: Campaign, fresh: timedelta = timedelta(seconds=60)) -> bool:
        heartbeat = campaign.sender_heartbeat
        return (
            campaign.sender_pid is not None
            and heartbeat is not None
            and (now() - heartbeat < fresh)
        )

    def pending_fields(
        self, campaign_id: int, chunk: int = 10_000
    ) -> Iterator[list[tuple[int, int, str | None]]]:
        """(id, import_id, fields JSON) of every pending recipient, in chunks."""
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(recipients.c.id, recipients.c.import_id, recipients.c.fields)
                    .where(
                        recipients.c.campaign_id == campaign_id,
                        recipients.c.state == S.PENDING.value,
                        recipients.c.id > after,
                    )
                    .order_by(recipients.c.id)
                    .limit(chunk)
                ).all()
            if not rows:
                return
            after = rows[-1][0]
            yield [(r[0], r[1], r[2]) for r in rows]

    def apply_recount(
        self,
        campaign_id: int,
        changes: dict[str, Any],
        updates: Sequence[tuple[str, str | None, int | None, str | None, int]],
        ucs2_rows: Sequence[dict[str, Any]],
    ) -> None:
        """A new message (or --gsm-safe) for the campaign and the recount of its pending
        recipients, in ONE transaction: (state, reason, parts, encoding, id) per recipient."""
        stamp = now()
        with self.engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id)
                .values(**changes, updated_at=stamp)
            )
            if updates:
                marks = _placeholders(conn.dialect.paramstyle, 5)
                conn.exec_driver_sql(
                    f"UPDATE recipients SET state = {marks[0]}, reason = {marks[1]}, "
                    f"parts = {marks[2]}, encoding = {marks[3]} "
                    f"WHERE id = {marks[4]} AND state = 'pending'",
                    list(updates),
                )
            conn.execute(
                ucs2_characters.delete().where(ucs2_characters.c.campaign_id == campaign_id)
            )
            if ucs2_rows:
                conn.execute(
                    insert(ucs2_characters),
                    [{**r, "campaign_id": campaign_id} for r in ucs2_rows],
                )

    # -- import ----------------------------------------------------------------------------------

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

    def known_phones(self, campaign_id: int) -> set[str]:
        """Every E.164 number already in the campaign (for duplicate detection across imports)."""
        with self.engine.connect() as conn:
            result = conn.execute(
                select(recipients.c.phone).where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.phone.is_not(None),
                    recipients.c.state != S.DUPLICATE.value,
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
        stamp = now()
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
                    created_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            # A million rows: straight to the driver's executemany, without building a dict and
            # compiling parameters per row. Plain values only (text and integers), in the
            # driver's own placeholder style, so any database works the same.
            names = ("campaign_id", "import_id", *row_columns)
            marks = ", ".join(_placeholders(conn.dialect.paramstyle, len(names)))
            sql = f"INSERT INTO recipients ({', '.join(names)}) VALUES ({marks})"
            head = (campaign_id, import_id)
            total = 0
            for batch in batches:
                if not batch:
                    continue
                conn.exec_driver_sql(sql, [head + row for row in batch])
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

    # -- reading ---------------------------------------------------------------------------------

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
        return _full_counts({s: n for s, n, _ in rows}, {s: int(p) for s, _, p in rows})

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

    def sample_recipients(self, campaign_id: int, per_class: int = 1) -> list[Claim]:
        """Up to `per_class` pending recipients of each (country, encoding, parts) class."""
        out: list[Claim] = []
        with self.engine.connect() as conn:
            for cls in self.parts_classes(campaign_id):
                rows = conn.execute(
                    select(*_CLAIM_COLUMNS)
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
                out.extend(_claim(r) for r in rows)
        return out

    def report_rows(self, campaign_id: int, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
        """Every recipient in input order (file by file, row by row), streamed."""
        query = (
            select(
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
            )
            .join(imports, imports.c.id == recipients.c.import_id)
            .where(recipients.c.campaign_id == campaign_id)
            .order_by(recipients.c.import_id, recipients.c.row)
        )
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=chunk).execute(query)
            for row in result:
                yield row._asdict()

    def recipient_fields(self, recipient_ids: Sequence[int]) -> dict[int, Mapping[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(recipients.c.id, recipients.c.fields).where(
                    recipients.c.id.in_(recipient_ids)
                )
            ).all()
        return {i: json.loads(f) if f else {} for i, f in rows}

    # -- sender lock -----------------------------------------------------------------------------

    def acquire_sender(
        self,
        campaign_id: int,
        *,
        token: str,
        pid: int,
        host: str,
        is_alive: Any,
        stale_after: timedelta = timedelta(seconds=60),
    ) -> None:
        """Make this process the campaign's only sender, or raise SenderBusy.

        A lock whose owner is gone (same host and its pid is dead, or no heartbeat for
        `stale_after`) is taken over."""
        stamp = now()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(
                    campaigns.c.sender_token,
                    campaigns.c.sender_pid,
                    campaigns.c.sender_host,
                    campaigns.c.sender_heartbeat,
                ).where(campaigns.c.id == campaign_id)
            ).one()
            if row.sender_token is not None:
                heartbeat = aware(row.sender_heartbeat)
                dead_here = row.sender_host == host and not is_alive(row.sender_pid)
                silent = heartbeat is None or stamp - heartbeat > stale_after
                if not (dead_here or silent):
                    raise SenderBusy(
                        f"campaign is already being sent by pid {row.sender_pid} on "
                        f"{row.sender_host} (last heartbeat {heartbeat:%H:%M:%S} UTC); "
                        "it will not send in parallel. Wait for it, or stop it (Ctrl-C) first"
                    )
            # Compare-and-set on the old token so two starting senders cannot both win.
            result = conn.execute(
                update(campaigns)
                .where(
                    campaigns.c.id == campaign_id,
                    campaigns.c.sender_token.is_(None)
                    if row.sender_token is None
                    else campaigns.c.sender_token == row.sender_token,
                )
                .values(
                    sender_token=token, sender_pid=pid, sender_host=host, sender_heartbeat=stamp
                )
            )
            if result.rowcount != 1:
                raise SenderBusy(
                    "another sender started at the same moment; it will not send in parallel"
                )

    def heartbeat(self, campaign_id: int, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.sender_token == token)
                .values(sender_heartbeat=now())
            )

    def release_sender(self, campaign_id: int, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.sender_token == token)
                .values(sender_token=None, sender_pid=None, sender_host=None, sender_heartbeat=None)
            )

    # -- runs ------------------------------------------------------------------------------------

    def start_run(
        self, campaign_id: int, *, pid: int, host: str, dry_run: bool, mps: float, concurrency: int
    ) -> int:
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(runs).values(
                        campaign_id=campaign_id,
                        pid=pid,
                        host=host,
                        dry_run=dry_run,
                        mps=mps,
                        concurrency=concurrency,
                        started_at=now(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )

    def end_run(self, run_id: int, exit_code: int, note: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(ended_at=now(), exit_code=exit_code, note=note)
            )

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

    # At most this many of the newest attempt rows are looked at for the current rate: far more
    # than 10 s of sending at any MPS, and a primary-key range, so `status` stays fast however
    # long the attempts table grows.
    RATE_WINDOW_ROWS = 50_000

    def recent_rate(self, campaign_id: int, seconds: float = 10.0) -> tuple[int, int]:
        """(messages, parts) accepted by the API in the last `seconds` (for status while sending)."""
        since = now() - timedelta(seconds=seconds)
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(attempts.c.id))).scalar() or 0
            row = conn.execute(
                select(func.count(), func.coalesce(func.sum(recipients.c.parts), 0))
                .select_from(attempts.join(recipients, recipients.c.id == attempts.c.recipient_id))
                .where(
                    attempts.c.id > newest - self.RATE_WINDOW_ROWS,
                    attempts.c.campaign_id == campaign_id,
                    attempts.c.outcome == "sent",
                    attempts.c.finished_at >= since,
                )
            ).one()
        return int(row[0]), int(row[1])

    # -- the send path ---------------------------------------------------------------------------

    def recover_orphans(self, campaign_id: int) -> int:
        """Claims left `sending` by a sender that died: their calls may have gone out, so they become
        `unknown` (never re-sent unless the user asks). Returns how many."""
        stamp = now()
        reason = "the sender stopped while this call may have been in flight"
        with self.engine.begin() as conn:
            orphan_ids = select(recipients.c.id).where(
                recipients.c.campaign_id == campaign_id, recipients.c.state == S.SENDING.value
            )
            conn.execute(
                update(attempts)
                .where(attempts.c.recipient_id.in_(orphan_ids), attempts.c.outcome.is_(None))
                .values(outcome="unknown", finished_at=stamp, reason=reason)
            )
            result = conn.execute(
                update(recipients)
                .where(
                    recipients.c.campaign_id == campaign_id, recipients.c.state == S.SENDING.value
                )
                .values(state=S.UNKNOWN.value, reason=reason, updated_at=stamp)
            )
            return int(result.rowcount)

    def retry_unknown(self, campaign_id: int) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(recipients)
                .where(
                    recipients.c.campaign_id == campaign_id, recipients.c.state == S.UNKNOWN.value
                )
                .values(
                    state=S.PENDING.value,
                    reason="retried with --retry-unknown after an unknown outcome",
                    updated_at=now(),
                )
            )
            return int(result.rowcount)

    def count_state(self, campaign_id: int, state: RecipientState) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        recipients.c.campaign_id == campaign_id, recipients.c.state == state.value
                    )
                ).scalar_one()
            )

    def next_pending(self, campaign_id: int, *, after_id: int, limit: int) -> list[Claim]:
        """Pending recipients after `after_id`, in id order, WITHOUT claiming them (dry runs)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_CLAIM_COLUMNS)
                .where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.state == S.PENDING.value,
                    recipients.c.id > after_id,
                )
                .order_by(recipients.c.id)
                .limit(limit)
            ).all()
        return [_claim(r) for r in rows]

    def claim(
        self,
        campaign_id: int,
        run_id: int,
        candidates: Sequence[Claim],
        *,
        dry_run: bool = False,
        settle: Sequence[Settlement] = (),
    ) -> list[Claim]:
        """pending -> sending for `candidates`, with one attempt row each, in ONE commit made before
        any of their calls. Rows that are no longer pending are left out of the result.

        This and `settle` run for every message the sender sends, so they are written as a few
        whole-batch statements in the driver's own SQL (no per-row statements): each statement
        hands the GIL over once, not once per row, while the sender's threads are busy.
        `settle`: outcomes to record first, in the same transaction (see `settle`)."""
        if not candidates:
            self.settle(run_id, settle)
            return []
        ids = [c.recipient_id for c in candidates]
        with self.engine.begin() as conn:
            if settle:
                _settle(conn, run_id, settle)
            p = _Params(conn)
            stamp = p.time(now())
            if dry_run:
                claimed = set(ids)
            else:
                rows = conn.exec_driver_sql(
                    f"UPDATE recipients SET state = 'sending', attempts = attempts + 1, "
                    f"updated_at = {p.one()} WHERE id IN ({p.many(len(ids))}) "
                    "AND state = 'pending' RETURNING id",
                    (stamp, *ids),
                ).all()
                claimed = {r[0] for r in rows}
            if claimed:
                p.n = 0  # a new statement: numeric placeholders count from 1 again
                values = [(i, campaign_id, run_id, dry_run, stamp) for i in ids if i in claimed]
                conn.exec_driver_sql(
                    "INSERT INTO attempts (recipient_id, campaign_id, run_id, dry_run, started_at) "
                    f"VALUES {', '.join(f'({p.many(5)})' for _ in values)}",
                    tuple(v for row in values for v in row),
                )
        return [c for c in candidates if c.recipient_id in claimed]

    def settle(self, run_id: int, settlements: Sequence[Settlement]) -> None:
        """Record the outcomes of returned calls, in one commit. A settlement with a state moves
        its recipient out of `sending` (only if it is still `sending`: ours to settle)."""
        if not settlements:
            return
        with self.engine.begin() as conn:
            _settle(conn, run_id, settlements)

    def attempts_for(self, recipient_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(attempts)
                .where(attempts.c.recipient_id == recipient_id)
                .order_by(attempts.c.id)
            ).all()
        return [r._asdict() for r in rows]

    def dry_run_results(self, run_id: int) -> list[dict[str, Any]]:
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


def _settle(conn: Any, run_id: int, settlements: Sequence[Settlement]) -> None:
    p = _Params(conn)
    stamp = p.time(now())
    ids = [s.recipient_id for s in settlements]
    outcome, outcome_args = p.case("recipient_id", ids, [s.outcome for s in settlements])
    mid, mid_args = p.case("recipient_id", ids, [s.message_id for s in settlements])
    why, why_args = p.case("recipient_id", ids, [s.reason for s in settlements])
    conn.exec_driver_sql(
        f"UPDATE attempts SET outcome = {outcome}, message_id = {mid}, reason = {why}, "
        f"finished_at = {p.one()} WHERE run_id = {p.one()} AND outcome IS NULL "
        f"AND recipient_id IN ({p.many(len(ids))})",
        (*outcome_args, *mid_args, *why_args, stamp, run_id, *ids),
    )
    final = [s for s in settlements if s.state is not None]
    if final:
        p.n = 0  # a new statement: numeric placeholders count from 1 again
        ids = [s.recipient_id for s in final]
        state, state_args = p.case("id", ids, [s.state.value for s in final if s.state is not None])
        mid, mid_args = p.case("id", ids, [s.message_id for s in final])
        why, why_args = p.case("id", ids, [s.reason for s in final])
        conn.exec_driver_sql(
            f"UPDATE recipients SET state = {state}, "
            f"message_id = COALESCE({mid}, message_id), reason = {why}, "
            f"updated_at = {p.one()} WHERE id IN ({p.many(len(ids))}) "
            "AND state = 'sending'",
            (*state_args, *mid_args, *why_args, stamp, *ids),
        )


class _Params:
    """Positional parameters in the connection's driver style, for hand-written batch SQL."""

    def __init__(self, conn: Any) -> None:
        self.style = conn.dialect.paramstyle
        self.sqlite = conn.dialect.name == "sqlite"
        self.n = 0

    def one(self) -> str:
        self.n += 1
        return _placeholders(self.style, 1, start=self.n)[0]

    def many(self, count: int) -> str:
        marks = _placeholders(self.style, count, start=self.n + 1)
        self.n += count
        return ", ".join(marks)

    def case(self, key: str, keys: Sequence[Any], values: Sequence[Any]) -> tuple[str, list[Any]]:
        """CASE key WHEN k1 THEN v1 ... END, and its arguments in order."""
        parts = []
        args: list[Any] = []
        for k, v in zip(keys, values, strict=True):
            parts.append(f"WHEN {self.one()} THEN {self.one()}")
            args += (k, v)
        return f"CASE {key} {' '.join(parts)} END", args

    def time(self, value: datetime) -> Any:
        # SQLAlchemy keeps SQLite datetimes as naive UTC text in this format; other drivers take
        # the datetime itself.
        if self.sqlite:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value


def _placeholders(paramstyle: str, n: int, start: int = 1) -> list[str]:
    if paramstyle == "qmark":
        return ["?"] * n
    if paramstyle in ("format", "pyformat"):
        return ["%s"] * n
    if paramstyle == "numeric":
        return [f":{start + i}" for i in range(n)]
    if paramstyle == "numeric_dollar":
        return [f"${start + i}" for i in range(n)]
    raise LedgerError(f"unsupported database driver parameter style {paramstyle!r}")


def _claim(row: Any) -> Claim:
    return Claim(
        row.id,
        row.phone,
        row.country,
        json.loads(row.fields) if row.fields else {},
        int(row.parts or 1),
    )


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


def _full_counts(counts: Mapping[str, int], parts: Mapping[str, int]) -> StateCounts:
    return StateCounts(
        counts={s: int(counts.get(s, 0)) for s in ALL_STATES},
        parts={s: int(parts.get(s, 0)) for s in ALL_STATES},
    )


__all__ = [
    "Campaign",
    "CampaignExists",
    "CampaignNotFound",
    "CampaignSpec",
    "Claim",
    "ImportRecord",
    "Ledger",
    "LedgerError",
    "PartsClass",
    "SenderBusy",
    "Settlement",
    "StateCounts",
]
