"""The send path: the single-sender lock, runs, and the transitions that keep anyone from being sent twice.

The guarantee rests on three transitions, each committed before the next step happens:
`claim` (pending -> sending, plus an open attempt row) before the API call, `settle` (sending ->
sent/failed/opted_out/unknown, or back to pending when the call certainly did not go out) when the
call returns, while the run's attempt is still open, and `recover_orphans` (sending -> unknown,
closing the attempt) when a new sender finds claims left by one that died or went silent.
Nothing but `retry_unknown`, which the user asks for, ever makes an `unknown` recipient `pending`
again. tests/ledger/ (test_claims.py, test_recovery.py) checks each of these rules on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event, func, insert, select, text, update

from campaign.domain import Claim, RecipientState, Settlement, aware, now, sender_alive
from campaign.ledger import senders as registry
from campaign.ledger import sql
from campaign.ledger.audience import mark_suppressed
from campaign.ledger.engine import db_now
from campaign.ledger.errors import SenderBusy
from campaign.ledger.rows import CLAIM_COLUMNS, claim_from_row
from campaign.ledger.tables import attempts, campaigns, recipients, runs, senders

S = RecipientState
# A sender silent this long (no heartbeat, on the database's clock) is declared lost by a live one.
SENDER_TIMEOUT = 30.0
ORPHAN_REASON = "the sender stopped while this call may have been in flight"
LOST_REASON = "its sender went silent and was declared lost while this call may have been in flight"
RETRY_UNKNOWN_REASON = "retried with --retry-unknown after an unknown outcome"


class ClaimsMixin:
    engine: Engine

    # -- the single-sender lock ------------------------------------------------------------------

    def acquire_sender(
        self,
        campaign_id: int,
        *,
        token: str,
        pid: int,
        host: str,
        is_alive: Callable[[int | None], bool],
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
                        f"{row.sender_host} (last heartbeat {heartbeat:%H:%M:%S} UTC); a SQLite "
                        "ledger allows one sender per campaign: wait for it or stop it (Ctrl-C), "
                        "or share a PostgreSQL ledger (--db postgresql+psycopg://...) to run "
                        "several"
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

    # -- recovery --------------------------------------------------------------------------------

    def recover_orphans(
        self, campaign_id: int, *, sender_id: int | None = None, timeout: float = SENDER_TIMEOUT
    ) -> int:
        """Claims left `sending` by a sender that died: their calls may have gone out, so they become
        `unknown` (never re-sent unless the user asks). Returns how many, in this campaign.

        On SQLite (one sender per campaign, and the caller holds its lock), or without `sender_id`
        (a caller holding the campaign's lock), that is every `sending` row of the campaign, and
        registered senders of the campaign still marked live are declared lost. A registered
        sender on a shared ledger (PostgreSQL) holds no lock, and other senders may be working the
        campaign: only the claims of senders no longer live (declared lost now if silent past `timeout` seconds, or
        stopped), and those with no owner (left by a release before 0008) while no sender of that
        release holds the campaign's lock, become `unknown`."""
        if not self.shared_ledger or sender_id is None:
            with self.engine.begin() as conn:
                if sender_id is not None:
                    registry.declare_campaign_lost(conn, campaign_id, but=sender_id)
                return _orphans_to_unknown(
                    conn,
                    (recipients.c.campaign_id == campaign_id)
                    & (recipients.c.state == S.SENDING.value),
                    ORPHAN_REASON,
                ).get(campaign_id, 0)
        recovered = self.sweep_lost_senders(timeout=timeout, by=sender_id)
        with self.engine.begin() as conn:
            lock = conn.execute(
                select(
                    campaigns.c.sender_pid, campaigns.c.sender_host, campaigns.c.sender_heartbeat
                )
                .where(campaigns.c.id == campaign_id)
                .with_for_update()
            ).one()
            if not sender_alive(lock):
                ownerless = _orphans_to_unknown(
                    conn,
                    (recipients.c.campaign_id == campaign_id)
                    & (recipients.c.state == S.SENDING.value)
                    & recipients.c.sender_id.is_(None),
                    ORPHAN_REASON,
                )
                recovered[campaign_id] = recovered.get(campaign_id, 0) + ownerless.get(
                    campaign_id, 0
                )
        return recovered.get(campaign_id, 0)

    @property
    def shared_ledger(self) -> bool:
        """Whether several senders may work one campaign (PostgreSQL), or one only (SQLite)."""
        return self.engine.dialect.name != "sqlite"

    def bound_idle_transactions(self, seconds: float) -> None:
        """On a shared ledger: a session of this process idle inside a transaction for `seconds`
        is ended by the server. A sender frozen mid-transaction (SIGSTOP, a paused VM) would
        otherwise hold its row locks - its registry row among them, which the declarers skip -
        and could never be declared lost. Its transaction rolls back: claims not yet committed
        were never called."""
        if not self.shared_ledger:
            return
        milliseconds = max(int(seconds * 1000), 100)

        def bound(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET idle_in_transaction_session_timeout = {milliseconds}")
            dbapi_connection.commit()

        event.listen(self.engine, "connect", bound)
        self.engine.dispose()  # the pooled connections were opened without it

    def refresh_claim_statistics(self) -> bool:
        """On PostgreSQL: ANALYZE recipients when its statistics are missing or stale (a fresh
        import, before autovacuum gets to it). Without them the planner reads the whole table for
        every claim: measured 240 ms a claim on 1,150 fresh rows, 1 ms after ANALYZE. One of the
        senders starting together does it (an advisory lock); the others go on. Returns whether
        it ran."""
        if self.engine.dialect.name != "postgresql":
            return False
        with self.engine.begin() as conn:
            stats = conn.execute(
                text(
                    "SELECT n_live_tup, n_mod_since_analyze, "
                    "coalesce(last_analyze, last_autoanalyze) IS NULL AS never "
                    "FROM pg_stat_user_tables WHERE relname = 'recipients' "
                    "AND schemaname = current_schema()"
                )
            ).first()
            stale = (
                stats is None
                or stats.never
                or stats.n_mod_since_analyze > max(1000, 0.2 * stats.n_live_tup)
            )
            if not stale:
                return False
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(8100923)")).scalar():
                return False  # another sender is analyzing it right now
            conn.execute(text("ANALYZE recipients"))
        return True

    # -- the sender registry (campaign.ledger.senders) ------------------------------------------

    def register_sender(self, campaign_id: int, *, host: str, pid: int) -> int:
        return registry.register(self.engine, campaign_id, host=host, pid=pid)

    def sender_heartbeat(
        self, sender_id: int, *, rate: float | None = None, rate_note: str | None = None
    ) -> None:
        """Raises SenderLost once the sender was declared lost (or stopped)."""
        registry.heartbeat(self.engine, sender_id, rate=rate, rate_note=rate_note)

    def stop_sender(self, sender_id: int) -> bool:
        return registry.stop(self.engine, sender_id)

    def list_senders(
        self, campaign_id: int | None = None, *, include_stopped: bool = False
    ) -> list[registry.SenderInfo]:
        return registry.list_senders(self.engine, campaign_id, include_stopped=include_stopped)

    def senders_on_identity(self, identity: str) -> list[registry.SenderInfo]:
        """The live senders sharing origination identity `identity` (any campaign)."""
        return registry.live_on_identity(self.engine, identity)

    def sweep_lost_senders(self, *, timeout: float, by: int | None = None) -> dict[int, int]:
        """Declare the senders silent for `timeout` seconds lost and turn the claims of every
        sender no longer live (lost, or stopped with claims left, e.g. a worker process died)
        into `unknown`, in ONE transaction; returns campaign id -> claims recovered. Any live
        sender may run it at any time: a live peer's claims are never touched."""
        with self.engine.begin() as conn:
            registry.declare_lost(conn, timeout=timeout, by=by)
            gone = select(senders.c.id).where(senders.c.state != registry.SenderState.LIVE.value)
            return _orphans_to_unknown(
                conn,
                (recipients.c.state == S.SENDING.value) & recipients.c.sender_id.in_(gone),
                LOST_REASON,
            )

    def silent_claims(self, campaign_id: int, *, silent_for: float) -> int:
        """`sending` rows of the campaign whose sender is live but has not heartbeaten for
        `silent_for` seconds (probably dead, not yet declared lost)."""
        silent = select(senders.c.id).where(
            senders.c.state == registry.SenderState.LIVE.value,
            senders.c.heartbeat_at < db_now(silent_for),
        )
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(recipients)
                    .where(
                        recipients.c.campaign_id == campaign_id,
                        recipients.c.state == S.SENDING.value,
                        recipients.c.sender_id.in_(silent),
                    )
                ).scalar_one()
            )

    def pending_id_bounds(self, campaign_id: int) -> tuple[int, int] | None:
        """The lowest and highest pending recipient ids (None: nothing pending): where senders
        sharing a campaign start reading, spread over it so that they seldom reach for the same
        rows."""
        with self.engine.connect() as conn:
            low, high = conn.execute(
                select(func.min(recipients.c.id), func.max(recipients.c.id)).where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.state == S.PENDING.value,
                )
            ).one()
        return None if low is None else (int(low), int(high))

    def retry_unknown(self, campaign_id: int) -> int:
        """unknown -> pending, because the user asked (`send --retry-unknown`). Returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(recipients)
                .where(
                    recipients.c.campaign_id == campaign_id, recipients.c.state == S.UNKNOWN.value
                )
                .values(state=S.PENDING.value, reason=RETRY_UNKNOWN_REASON, updated_at=now())
            )
            return int(result.rowcount)

    # -- claiming and settling -------------------------------------------------------------------

    def next_pending(self, campaign_id: int, *, after_id: int, limit: int) -> list[Claim]:
        """Pending recipients after `after_id`, in id order, WITHOUT claiming them (the sender's
        candidates: `claim` decides which of them are still pending)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*CLAIM_COLUMNS)
                .where(
                    recipients.c.campaign_id == campaign_id,
                    recipients.c.state == S.PENDING.value,
                    recipients.c.id > after_id,
                )
                .order_by(recipients.c.id)
                .limit(limit)
            ).all()
        return [claim_from_row(r) for r in rows]

    def claim(
        self,
        campaign_id: int,
        run_id: int,
        candidates: Sequence[Claim],
        *,
        dry_run: bool = False,
        settle: Sequence[Settlement] = (),
        sender_id: int | None = None,
    ) -> list[Claim]:
        """pending -> sending for `candidates`, with one attempt row each, in ONE commit made before
        any of their calls. Rows that are no longer pending are left out of the result.

        A dry run changes no recipient: its claims are attempt rows only (marked dry_run).
        `settle`: outcomes to record first, in the same transaction (see `settle`). This and
        `settle` run for every message sent: their statements are in campaign.ledger.sql.
        `sender_id`: the registered sender claiming; it owns the claims (only it may settle
        them), and claims nothing once it is no longer live. On PostgreSQL rows another sender
        is claiming at the same moment are skipped, never waited for nor shared."""
        if not candidates:
            self.settle(run_id, settle, sender_id=sender_id)
            return []
        # A recipient named twice is claimed (and so called) once.
        unique: dict[int, Claim] = {}
        for candidate in candidates:
            unique.setdefault(candidate.recipient_id, candidate)
        ids = list(unique)
        with self.engine.begin() as conn:
            if settle:
                _settle(conn, run_id, settle, sender_id)
            stamp = now()
            if not dry_run:
                # A number put on the do-not-send list while the campaign runs is never sent.
                mark_suppressed(conn, campaign_id, ids, stamp)
            claimed = (
                set(ids)
                if dry_run
                else sql.claim_pending(
                    conn, ids, stamp, campaign_id=campaign_id, sender_id=sender_id
                )
            )
            if claimed:
                attempt_rows = [(i, campaign_id, run_id, dry_run) for i in ids if i in claimed]
                sql.insert_attempts(conn, attempt_rows, stamp)
        return [c for i, c in unique.items() if i in claimed]

    def settle(
        self, run_id: int, settlements: Sequence[Settlement], *, sender_id: int | None = None
    ) -> None:
        """Record the outcomes of returned calls, in one commit. A settlement with a state moves
        its recipient out of `sending`, only while the call is still this run's to settle: its
        attempt in `run_id` has no outcome yet and the recipient is still `sending` (and, with
        `sender_id`, still that sender's claim)."""
        if not settlements:
            return
        with self.engine.begin() as conn:
            _settle(conn, run_id, settlements, sender_id)


def _settle(
    conn: Connection, run_id: int, settlements: Sequence[Settlement], sender_id: int | None
) -> None:
    stamp = now()
    # Fencing: a run moves a recipient only while its own attempt is open, and only while the
    # recipient is still `sending` and its sender's claim. An outcome that comes back after the
    # sender was declared lost (silent, not dead: its attempts were closed and its claims made
    # `unknown`) must not touch the recipient, which a later run may have claimed again.
    open_here = sql.settle_attempts(conn, run_id, settlements, stamp)
    sql.settle_recipients(
        conn,
        [s for s in settlements if s.recipient_id in open_here],
        stamp,
        sender_id=sender_id,
    )


def _orphans_to_unknown(conn: Connection, where: Any, reason: str) -> dict[int, int]:
    """The `sending` rows matching `where` become `unknown` (their open attempts too): their
    calls may have gone out. Returns campaign id -> how many."""
    stamp = now()
    orphan_ids = select(recipients.c.id).where(where)
    conn.execute(
        update(attempts)
        .where(attempts.c.recipient_id.in_(orphan_ids), attempts.c.outcome.is_(None))
        .values(outcome=S.UNKNOWN.value, finished_at=stamp, reason=reason)
    )
    rows = conn.execute(
        update(recipients)
        .where(where)
        .values(state=S.UNKNOWN.value, reason=reason, updated_at=stamp)
        .returning(recipients.c.campaign_id)
    ).all()
    counts: dict[int, int] = {}
    for row in rows:
        counts[row.campaign_id] = counts.get(row.campaign_id, 0) + 1
    return counts
