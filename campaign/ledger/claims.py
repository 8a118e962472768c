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

from sqlalchemy import Connection, Engine, insert, select, update

from campaign.domain import Claim, RecipientState, Settlement, aware, now
from campaign.ledger import sql
from campaign.ledger.audience import mark_suppressed
from campaign.ledger.errors import SenderBusy
from campaign.ledger.rows import CLAIM_COLUMNS, claim_from_row
from campaign.ledger.tables import attempts, campaigns, recipients, runs

S = RecipientState
ORPHAN_REASON = "the sender stopped while this call may have been in flight"
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

    # -- recovery --------------------------------------------------------------------------------

    def recover_orphans(self, campaign_id: int) -> int:
        """Claims left `sending` by a sender that died: their calls may have gone out, so they become
        `unknown` (never re-sent unless the user asks). Returns how many."""
        stamp = now()
        with self.engine.begin() as conn:
            orphan_ids = select(recipients.c.id).where(
                recipients.c.campaign_id == campaign_id, recipients.c.state == S.SENDING.value
            )
            conn.execute(
                update(attempts)
                .where(attempts.c.recipient_id.in_(orphan_ids), attempts.c.outcome.is_(None))
                .values(outcome=S.UNKNOWN.value, finished_at=stamp, reason=ORPHAN_REASON)
            )
            result = conn.execute(
                update(recipients)
                .where(
                    recipients.c.campaign_id == campaign_id, recipients.c.state == S.SENDING.value
                )
                .values(state=S.UNKNOWN.value, reason=ORPHAN_REASON, updated_at=stamp)
            )
            return int(result.rowcount)

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
    ) -> list[Claim]:
        """pending -> sending for `candidates`, with one attempt row each, in ONE commit made before
        any of their calls. Rows that are no longer pending are left out of the result.

        A dry run changes no recipient: its claims are attempt rows only (marked dry_run).
        `settle`: outcomes to record first, in the same transaction (see `settle`). This and
        `settle` run for every message sent: their statements are in campaign.ledger.sql."""
        if not candidates:
            self.settle(run_id, settle)
            return []
        # A recipient named twice is claimed (and so called) once.
        unique: dict[int, Claim] = {}
        for candidate in candidates:
            unique.setdefault(candidate.recipient_id, candidate)
        ids = list(unique)
        with self.engine.begin() as conn:
            if settle:
                _settle(conn, run_id, settle)
            stamp = now()
            if not dry_run:
                # A number put on the do-not-send list while the campaign runs is never sent.
                mark_suppressed(conn, campaign_id, ids, stamp)
            claimed = set(ids) if dry_run else sql.claim_pending(conn, ids, stamp)
            if claimed:
                attempt_rows = [(i, campaign_id, run_id, dry_run) for i in ids if i in claimed]
                sql.insert_attempts(conn, attempt_rows, stamp)
        return [c for i, c in unique.items() if i in claimed]

    def settle(self, run_id: int, settlements: Sequence[Settlement]) -> None:
        """Record the outcomes of returned calls, in one commit. A settlement with a state moves
        its recipient out of `sending`, only while the call is still this run's to settle: its
        attempt in `run_id` has no outcome yet and the recipient is still `sending`."""
        if not settlements:
            return
        with self.engine.begin() as conn:
            _settle(conn, run_id, settlements)


def _settle(conn: Connection, run_id: int, settlements: Sequence[Settlement]) -> None:
    stamp = now()
    # Fencing: a run moves a recipient only while its own attempt is open. An outcome that comes
    # back after recover_orphans closed the attempt (the sender was silent, not dead) must not
    # touch the recipient, which a later run may have claimed again (--retry-unknown).
    open_here = sql.settle_attempts(conn, run_id, settlements, stamp)
    sql.settle_recipients(conn, [s for s in settlements if s.recipient_id in open_here], stamp)
