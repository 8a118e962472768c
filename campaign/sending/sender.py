"""The paced sender loop.

One thread (the caller's) owns the ledger and the pacing; a Caller (campaign.sending.callers: threads, or
threads in worker processes) makes the API calls. For each call, in this order:

1. tokens for the message's parts are taken from the rate limiter;
2. the recipient is claimed: pending -> sending plus an attempt row, COMMITTED;
3. the call is made (by the Caller);
4. its outcome is committed (sent + MessageId, failed, opted_out, unknown), or - for a throttle or a
   service error, which were certainly not sent - the recipient goes back to `pending` and into a
   retry queue of this run.

So `sending` rows are exactly the calls in flight (at most `concurrency`), and a sender killed at any
moment leaves at most that many rows whose fate is unknown; the next sender marks them `unknown`.

The loop (`Sender._loop`) repeats named steps: record the calls that returned, launch the calls that
are due (claims committed in one transaction before their calls, carrying the outcomes recorded so
far), flush outcomes that waited long enough, heartbeat, report progress, wait for work.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import queue
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from campaign.aws.sms import build_request
from campaign.domain import (
    AttemptOutcome,
    Campaign,
    Claim,
    RecipientState,
    Settlement,
    StopReason,
    pid_alive,
)
from campaign.errors import ExitCode, UserError, count
from campaign.ledger import Ledger
from campaign.ledger.claims import SENDER_TIMEOUT
from campaign.ledger.engine import LedgerStorageError
from campaign.ledger.rates import SharedRate
from campaign.ledger.senders import SenderLost
from campaign.message import Template, gsm_safe
from campaign.pricing import PriceTable, cost_of, recorded_spend
from campaign.sending.admission import Admission, Check, Waiting
from campaign.sending.callers import Caller
from campaign.sending.pacing import AdaptiveRate, ControlStatus, PartsRateLimiter
from campaign.sending.retry import Decision, Outcome, retry_delay

S = RecipientState
HEARTBEAT_SECONDS = 5.0
PREFETCH = 1000
SETTLE_MAX_WAIT = 0.05  # seconds an outcome may wait to be committed with others
SETTLE_MAX_BATCH = 256  # outcomes committed at once at most
PROGRESS_SECONDS = 0.1  # how often the progress callback runs
IDLE_WAIT = 0.2  # the loop wakes at least this often (stop requests, heartbeat, progress)
# Claims are made in bursts at most this often: one commit for several messages. The service's
# bucket holds about a second of traffic, so bursts this short never trip it.
CLAIM_WINDOW = 0.025
SWITCH_INTERVAL = 0.02
GIVEN_UP_RECHECK = 30.0  # seconds between looks for others while only given-up ones are claimable
# What the launch step says about the next one: seconds to wait, a reason to stop, or None (nothing
# to claim now).
LaunchWait = float | StopReason | None
# The final states of the per-recipient decisions (a dry run records the outcome only).
_FINAL = {
    Decision.FAILED: (S.FAILED, AttemptOutcome.FAILED),
    Decision.OPTED_OUT: (S.OPTED_OUT, AttemptOutcome.OPTED_OUT),
    Decision.UNKNOWN: (S.UNKNOWN, AttemptOutcome.UNKNOWN),
}


def _waiting_news(held: Waiting) -> tuple[object, ...]:
    """What a person watching wants to hear again when it changes."""
    return (held.next_opening, held.window, held.capped, held.never, held.deadline)


class SenderFailed(UserError):
    """The send cannot go on (one line for the user); the ledger is consistent."""


class LedgerUnrecorded(LedgerStorageError):
    """The ledger refused the last writes of a run: what is wrong, and which recipients are left
    `sending` (the next send marks them `unknown`). Nothing is sent twice."""


@dataclass(frozen=True)
class SendOptions:
    mps: float
    concurrency: int
    dry_run: bool = False
    limit: int | None = None
    budget: Decimal | None = None
    prices: PriceTable | None = None
    sample: tuple[Claim, ...] | None = None  # dry-run these recipients only (stratified sample)
    # Liveness in the sender registry: a heartbeat this often; a sender silent for
    # `sender_timeout` seconds is declared lost by a live one (its claims become `unknown`).
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    sender_timeout: float = SENDER_TIMEOUT


@dataclass
class SendStats:
    """What the progress bar and the final summary show; updated by the loop thread only."""

    claimed: int = 0
    sent: int = 0
    dry_run_ok: int = 0
    failed: int = 0
    opted_out: int = 0
    unknown: int = 0
    throttles: int = 0
    retries: int = 0
    gave_up: int = 0
    parts_sent: int = 0
    spend: Decimal = Decimal(0)
    started: float = field(default_factory=time.monotonic)
    halt_reason: str | None = None
    stop: StopReason = StopReason.DONE
    failures: dict[str, int] = field(default_factory=dict)
    expired: int = 0  # pending recipients the deadline expired in this run
    suppressed: int = 0  # candidates found on the do-not-send list in this run
    waiting: Waiting | None = None  # what the run waits for (or waited for, when it stopped)
    # The throttle control at the end of the run: the share throttled, its verdict and why.
    control: ControlStatus | None = None
    # On a shared ledger: every live sender's rate on this origination identity, summed (from
    # the registry, as of the last heartbeat). None on SQLite.
    joint_parts_per_second: float | None = None

    @property
    def done(self) -> int:
        return self.sent + self.dry_run_ok + self.failed + self.opted_out + self.unknown

    def parts_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.parts_sent / elapsed if elapsed > 0 else 0.0


@contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """The calls spend their time waiting on sockets and hand the GIL over at each wait; a longer
    forced-switch interval saves needless switches between them (measured: boto3 from 61 threads
    at 100 calls/s, 2.45 -> 2.11 ms CPU a call; the tool at 500 MPS, 2.5 -> 2.2 ms a message)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _drain(done: queue.SimpleQueue[Any]) -> list[Any]:
    items = []
    while True:
        try:
            items.append(done.get_nowait())
        except queue.Empty:
            return items


@dataclass(order=True)
class _Retry:
    ready_at: float
    seq: int
    claim: Claim = field(compare=False)
    tries: int = field(compare=False)


class Sender:
    def __init__(
        self,
        ledger: Ledger,
        campaign: Campaign,
        caller: Callable[[], Caller],
        options: SendOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Long: it declares the whole state of the send loop in one place, one attribute a line
        # with its comment; the named steps below share it, so splitting it would only scatter it.
        self.ledger = ledger
        self.campaign = campaign
        self._make_caller = caller  # made when the run starts: processes only if needed
        self.caller: Caller
        self.options = options
        # For whoever runs it (campaign.cli.send): a progress callback, and a stop request (set it
        # to stop claiming; the calls in flight are waited for and recorded).
        self.on_progress: Callable[[SendStats], None] | None = None
        self.stop_requested = threading.Event()
        self.clock = clock
        self.stats = SendStats()
        self.template = Template.parse(campaign.template)
        self.adaptive = AdaptiveRate(options.mps, clock=clock)
        # The local bucket on SQLite; on a shared ledger the identity's schedule row (acquire()).
        self.limiter: PartsRateLimiter | SharedRate = PartsRateLimiter(options.mps, clock=clock)
        self._pushed_rate = options.mps  # the adaptive rate last handed to the limiter
        self._pushed_at = 0.0
        self.sender_id: int | None = None  # in the sender registry (acquire())
        self._locked = False  # holds the campaign's SQLite lock
        self._liveness: _Liveness | None = None
        self.token = secrets.token_hex(16)
        self.host = socket.gethostname()
        self.run_id = 0
        self._buffer: deque[Claim] = deque()
        self._cursor = 0
        self._wrap = False  # started mid-campaign (_spread_start): read from the start once done
        self._pass_progress = 0  # recipients claimed or missed in this pass over the ids
        self._exhausted = False
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        # Calls in flight: recipient id -> (claim, when sent, earlier tries in this run).
        self._flight: dict[int, tuple[Claim, float, int]] = {}
        self._failing_in_a_row = 0
        self._breaker = max(20, 2 * options.concurrency)
        # The loop's state between steps.
        self._returned: list[tuple[int, Outcome]] = []  # calls back, not yet recorded
        self._outcomes: list[Settlement] = []  # recorded, not yet committed
        self._outcomes_since = 0.0  # when the oldest of them was recorded (0: none waiting)
        self._stopping: StopReason | None = None
        self._next_launch = 0.0
        self._last_progress = 0.0
        # Who may be claimed now (window, do-not-send list, frequency cap, deadline); none for a
        # dry run. `no_wait`: stop (StopReason.WAITING) rather than wait for a window to open;
        # `on_wait` hears what the run waits for, each time that changes.
        self.admission = None if options.dry_run else Admission(ledger, campaign)
        self.no_wait = False
        self.on_wait: Callable[[Waiting], None] | None = None
        # --budget and the campaign's budget (see _cost_within_budget): estimated dollars.
        self._spent_before = Decimal(0)  # earlier runs of the campaign: sent or unknown
        self._spent = Decimal(0)  # this run: sent or unknown (may have been sent)
        self._in_flight_cost = Decimal(0)  # this run's calls in flight
        # Service errors and failed connections per recipient in this run, throttles not counted
        # (retry_delay's cap); only recipients that had one.
        self._errors: dict[int, int] = {}
        # Recipients this run gave up on (left pending for the next run): never fetched again in
        # this run, whether by a window's refetch or a second pass over the campaign.
        self._given_up: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    def acquire(self) -> int:
        """Register this sender (and on SQLite take the campaign's lock: one sender per campaign),
        start its heartbeat, and recover what dead senders left. Returns how many claims of this
        campaign were found orphaned (now `unknown`).

        On a shared ledger (PostgreSQL) there is no lock: several senders may work the campaign,
        each claim is owned by its sender, and the pace is the identity's shared schedule."""
        ledger, opts = self.ledger, self.options
        if not ledger.shared_ledger:
            ledger.acquire_sender(
                self.campaign.id,
                token=self.token,
                pid=os.getpid(),
                host=self.host,
                is_alive=pid_alive,
            )
            self._locked = True
        try:
            ledger.bound_idle_transactions(max(IDLE_TRANSACTION_FLOOR, opts.sender_timeout / 3))
            self.sender_id = me = ledger.register_sender(
                self.campaign.id, host=self.host, pid=os.getpid()
            )
            # This sender's rank among the campaign's live ones (senders started together too);
            # only a shared ledger has peers (SQLite's lock admits one sender).
            peers = (
                sum(s.state == "live" and s.id < me for s in ledger.list_senders(self.campaign.id))
                if ledger.shared_ledger
                else 0
            )
            recovered = ledger.recover_orphans(
                self.campaign.id, sender_id=self.sender_id, timeout=opts.sender_timeout
            )
            ledger.refresh_claim_statistics()
            if ledger.shared_ledger and not opts.dry_run:
                self.limiter = self._shared_rate()
            self._spread_start(peers)
        except BaseException:
            self.release()
            raise
        self._liveness = _Liveness(self)
        self._liveness.start()
        return recovered

    def release(self) -> None:
        if self._liveness is not None:
            self._liveness.stop()
        if self.sender_id is not None:
            self.ledger.stop_sender(self.sender_id)
        if self._locked:
            self.ledger.release_sender(self.campaign.id, self.token)
            self._locked = False
        if isinstance(self.limiter, SharedRate):
            self.limiter.close()

    def _shared_rate(self) -> SharedRate:
        """The origination identity's schedule row, shared with every sender using it. The first
        sender on the identity sets its MPS; one joining live senders keeps theirs."""
        identity = self.campaign.origination_identity
        others = [s for s in self.ledger.senders_on_identity(identity) if s.id != self.sender_id]
        shared = SharedRate(self.ledger.engine, identity, self.options.mps)
        if not others and shared.rate != self.options.mps:
            shared.set_rate(self.options.mps)
        return shared

    def _spread_start(self, peers: int) -> None:
        """On a shared ledger, the k-th sender of a campaign starts reading its pending recipients
        at fraction k x 0.618 (mod 1) of their ids and wraps around, so that senders seldom reach
        for the same rows (a collision costs a claim that comes back short, never a duplicate)."""
        if not self.ledger.shared_ledger or not peers or self.options.sample is not None:
            return
        bounds = self.ledger.pending_id_bounds(self.campaign.id)
        if bounds is None:
            return
        low, high = bounds
        fraction = math.modf(peers * 0.6180339887)[0]
        self._cursor = low - 1 + int((high - low + 1) * fraction)
        self._wrap = self._cursor >= low

    def run(self) -> SendStats:
        """Send until nothing is pending, or until stopped. The lock must be held (acquire())."""
        opts = self.options
        self._start_budget()
        self.run_id = self.ledger.start_run(
            self.campaign.id,
            pid=os.getpid(),
            host=self.host,
            dry_run=opts.dry_run,
            mps=opts.mps,
            concurrency=opts.concurrency,
        )
        if opts.sample is not None:
            self._buffer.extend(opts.sample)
            self._exhausted = True
        self._last_progress = self.clock()
        exit_code = ExitCode.ERROR  # unless the loop ends normally
        self.caller = self._make_caller()
        try:
            with _switch_interval(SWITCH_INTERVAL):
                try:
                    self._loop()
                except DBAPIError:
                    # Frozen mid-transaction past the liveness timeout: the server ended the
                    # session, and peers have declared this sender lost. Say that, not the error.
                    self._raise_if_lost()
                    raise
                if self._stopping is None:
                    self._await_silent_peers()
            # Recipients still waiting for a retry are `pending` in the ledger: nothing to undo.
            self._retries.clear()
            lost = self._liveness.lost if self._liveness is not None else None
            if lost is not None:
                raise lost
            if self._stopping:
                self.stats.stop = self._stopping
            exit_code = self.stats.stop.exit_code
            return self.stats
        finally:
            self._close_run(exit_code)

    def _close_run(self, exit_code: ExitCode) -> None:
        """run()'s end, however it ends: the calls' maker closed, the outcomes still waiting
        committed, the run's end recorded, a last progress report. When the ledger refuses these
        writes, one error (LedgerUnrecorded) says what happened and what became of the outcomes
        that could not be recorded; it replaces whatever error stopped the loop."""
        try:
            self.caller.close()
        finally:
            self.stats.control = self.adaptive.status()
            try:
                if self._outcomes:
                    self.ledger.settle(self.run_id, self._outcomes, sender_id=self.sender_id)
                    self._outcomes.clear()
                self.ledger.end_run(self.run_id, exit_code, self.stats.halt_reason)
            except (UserError, SQLAlchemyError) as exc:
                raise LedgerUnrecorded(self._unrecorded(exc)) from exc
            finally:
                if self.on_progress:
                    self.on_progress(self.stats)

    def _unrecorded(self, exc: BaseException) -> str:
        """One line: the ledger's failure, and the recipients it leaves `sending`."""
        if isinstance(exc, UserError):
            what = str(exc)
        else:
            orig = getattr(exc, "orig", None) or exc
            first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            what = f"the ledger's database failed: {first}"
        returned, in_flight = len(self._outcomes), len(self._flight)
        if not returned and not in_flight:
            return f"{what}; every outcome was recorded, only the end of the run was not"
        accepted = sum(1 for o in self._outcomes if o.outcome is AttemptOutcome.SENT)
        held = []
        if returned:
            held.append(
                f"{count(returned, 'call')} that returned ({accepted:,} accepted by the service) "
                "could not be recorded"
            )
        if in_flight:
            held.append(
                f"{count(in_flight, 'call')} {'was' if in_flight == 1 else 'were'} in flight"
            )
        return (
            f"{what}; {' and '.join(held)}: their {count(returned + in_flight, 'recipient')} "
            "stay `sending`, and the next send marks them `unknown` (not re-sent unless "
            "--retry-unknown)"
        )

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        """Until nothing is left, or a stop was asked for and the calls in flight are back."""
        while True:
            if self.stop_requested.is_set() and self._stopping is None:
                self._stopping = StopReason.INTERRUPTED
            self._record_returned()
            now = self.clock()
            if self._outcomes and not self._outcomes_since:
                self._outcomes_since = now
            if self._stopping is None and now >= self._next_launch and self._launch_due(now):
                return  # nothing pending, nothing in flight: done (or gave up on some)
            self._flush_outcomes(now)
            if self._stopping is not None and not self._flight:
                return
            self._note_if_lost()
            self._progress_if_due(now)
            self._wait_for_work(now)

    def _record_returned(self) -> None:
        """Record the calls that returned (the workers queue them as they finish)."""
        self._returned.extend(_drain(self.caller.done))
        for recipient_id, outcome in self._returned:
            claim, sent_at, tries = self._flight.pop(recipient_id)
            halt = self._record(claim, sent_at, tries, outcome)
            if halt and self._stopping is None:
                self._stopping = StopReason.HALTED
                self.stats.halt_reason = halt
        self._returned.clear()

    def _launch_due(self, now: float) -> bool:
        """Claim and call as the rate and the free slots allow, and say when to look again.

        Claims go in small bursts (CLAIM_WINDOW) so that one commit carries several messages;
        outcomes waiting to be committed ride in the same transaction, before the claims. Returns
        True when the run is over: nothing to claim, nothing in flight, no retry queued."""
        if not self._may_start_calls():
            # Heartbeats failing (the ledger unreachable), or declared lost: no new call.
            self._next_launch = now + IDLE_WAIT
            return False
        wait = self._launch()
        if wait is None and not self._flight and not self._retries:
            return True
        if isinstance(wait, StopReason):
            self._stopping = wait
        elif wait is not None:
            self._next_launch = now + max(wait, CLAIM_WINDOW)
        else:
            self._next_launch = now + max(self._retry_wait() or IDLE_WAIT, CLAIM_WINDOW)
        return False

    def _flush_outcomes(self, now: float) -> None:
        """Commit the recorded outcomes once they are many or waited long enough, or when no
        claim will carry them (nothing in flight, or the run is stopping)."""
        outcomes = self._outcomes
        if outcomes and (
            not self._flight
            or len(outcomes) >= SETTLE_MAX_BATCH
            or now - self._outcomes_since >= SETTLE_MAX_WAIT
            or self._stopping
        ):
            self.ledger.settle(self.run_id, outcomes, sender_id=self.sender_id)
            outcomes.clear()
        if not outcomes:
            self._outcomes_since = 0.0

    def _note_if_lost(self) -> None:
        """The heartbeat runs in its own thread (_Liveness); here the loop learns what it found:
        a sender declared lost stops claiming, waits for its calls in flight and exits."""
        liveness = self._liveness
        if liveness is not None and liveness.lost is not None and self._stopping is None:
            self._stopping = StopReason.INTERRUPTED

    def _progress_if_due(self, now: float) -> None:
        if self.on_progress and now - self._last_progress >= PROGRESS_SECONDS:
            self.on_progress(self.stats)
            self._last_progress = now

    def _wait_for_work(self, now: float) -> None:
        """Sleep until a call returns, more may be claimed, or outcomes must be committed."""
        timeout = IDLE_WAIT
        if self._stopping is None:
            timeout = min(timeout, self._next_launch - now)
        if self._outcomes:
            timeout = min(timeout, self._outcomes_since + SETTLE_MAX_WAIT - now)
        if timeout <= 0:
            return
        try:
            self._returned.append(self.caller.done.get(timeout=timeout))
        except queue.Empty:
            if self._flight and not self.caller.healthy():
                # Its calls in flight may or may not have gone out: they stay `sending`, and the
                # next run marks them `unknown`.
                raise SenderFailed(
                    "a worker process making the API calls died; run the same command "
                    "again to resume (the calls it had in flight will be `unknown`)"
                ) from None

    # -- claiming --------------------------------------------------------------------------------

    def _launch(self) -> LaunchWait:
        """Claim as many recipients as the free slots and the rate allow, and start their calls.

        Returns the seconds until more may go, a stop reason, or None when there is nothing left
        to claim now."""
        for _ in range(3):  # again at once when other senders claimed part of the batch first
            batch, wait = self._take_batch()
            if not batch:
                break
            missed = self._claim_and_call(batch)
            if wait is None:
                wait = 0.0
            if not missed:
                break
        return wait

    def _take_batch(self) -> tuple[list[tuple[Claim, int]], LaunchWait]:
        """The next recipients to claim (with their earlier tries), within the free slots, the
        rate, --limit and --budget; and what stopped the batch there."""
        opts = self.options
        free = opts.concurrency - len(self._flight)
        batch: list[tuple[Claim, int]] = []
        batch_cost = Decimal(0)  # estimated cost of `batch`, for --budget
        in_batch: set[int] = set()
        retrying = {r.claim.recipient_id for r in self._retries}
        while free > len(batch):
            candidate = self._next_candidate()
            if candidate is None:
                return batch, self._when_nothing_to_claim(batch)
            claim, tries = candidate
            if self._taken(claim, tries, in_batch, retrying):
                continue
            if (
                not tries
                and opts.limit is not None
                and self.stats.claimed + len(batch) >= opts.limit
            ):
                wait = self._retry_wait()
                return batch, StopReason.LIMIT if wait is None and not batch else wait
            if self._budgeted:
                cost = self._cost_within_budget(claim, batch_cost)
                if cost is None:
                    return batch, StopReason.BUDGET
                if isinstance(cost, float):
                    return batch, cost  # may fit once the calls in flight are settled
                batch_cost += cost
            delay = self.limiter.delay_for(claim.parts)
            if delay > 0:
                return batch, delay
            self.limiter.try_acquire(claim.parts)
            if tries:
                heapq.heappop(self._retries)
            else:
                self._buffer.popleft()
            batch.append((claim, tries))
            in_batch.add(claim.recipient_id)
        return batch, None

    # -- the budgets ----------------------------------------------------------------------------

    @property
    def _budgeted(self) -> bool:
        """A budget applies: --budget, or the campaign's; never to a dry run (not charged)."""
        if self.options.dry_run:
            return False
        return self.options.budget is not None or self.campaign.budget is not None

    def _start_budget(self) -> None:
        """The campaign's budget covers every run: the calls earlier runs made that may have cost
        (accepted, unknown, in flight) count from the start: a resumed send never spends it again."""
        if self.campaign.budget is None or not self._budgeted:
            return
        spent, unpriced = recorded_spend(self.ledger, self.campaign.id, self.options.prices)
        self._spent_before = spent
        if unpriced:
            raise SenderFailed(
                f"{count(unpriced, 'message')} already sent without a price in the price "
                "table, so the "
                f"campaign's budget (${self.campaign.budget}) cannot be held; add their countries "
                "to the table"
            )

    def _taken(self, claim: Claim, tries: int, in_batch: set[int], retrying: set[int]) -> bool:
        """Drop a candidate already in this batch or in flight: read again after the ids wrapped
        around (a shared ledger), or a queued retry whose recipient was claimed again meanwhile;
        and one read again while it waits in this run's retry queue. A recipient is never passed
        to two calls at once."""
        rid = claim.recipient_id
        queued = not tries and (rid in retrying or rid in self._given_up)
        if rid not in self._flight and rid not in in_batch and not queued:
            return False
        if tries:
            heapq.heappop(self._retries)
        else:
            self._buffer.popleft()
        return True

    def _cost_within_budget(self, claim: Claim, batch_cost: Decimal) -> Decimal | float | None:
        """The claim's estimated cost when it fits the budgets, counting the calls in flight and
        `batch_cost` (claimed with it) at their estimated price; seconds to wait when it would fit
        only if calls in flight fail; None (and the halt reason set) when it cannot fit, or has no
        price to check it with. So the estimated spend never passes a budget."""
        cost = cost_of(claim.parts, claim.country, self.options.prices)
        if cost is None:
            self.stats.halt_reason = (
                f"no price for country {claim.country or '?'} in the price table, so "
                "the budget cannot be enforced; add the country to the table"
            )
            return None
        pending = self._in_flight_cost + batch_cost  # claimed, not settled yet
        run_budget, campaign_budget = self.options.budget, self.campaign.budget
        if campaign_budget is not None:
            spent = self._spent_before + self._spent
            if spent + cost > campaign_budget:
                self.stats.halt_reason = (
                    f"the campaign's budget is reached: ${spent:.4f} estimated spent over all "
                    f"its runs; the next message (${cost:.5f}) would pass its budget "
                    f"${campaign_budget} (`campaign edit {self.campaign.name} --budget` "
                    "raises it)"
                )
                return None
            if spent + pending + cost > campaign_budget:
                return CLAIM_WINDOW
        if run_budget is not None:
            if self._spent + cost > run_budget:
                self.stats.halt_reason = (
                    f"budget reached: ${self._spent:.4f} estimated so far; the next "
                    f"message (${cost:.5f}) would pass --budget ${run_budget}"
                )
                return None
            if self._spent + pending + cost > run_budget:
                return CLAIM_WINDOW
        return cost

    def _budget_claimed(self, claim: Claim) -> None:
        """A call goes out: its estimated price counts against the budgets until settled."""
        if self._budgeted:
            cost = cost_of(claim.parts, claim.country, self.options.prices)
            self._in_flight_cost += cost or Decimal(0)

    def _budget_settled(self, claim: Claim, spent: bool) -> None:
        """A call came back; `spent`: it was (or may have been) sent, so its price stays spent."""
        if self._budgeted:
            cost = cost_of(claim.parts, claim.country, self.options.prices) or Decimal(0)
            self._in_flight_cost -= cost
            if spent:
                self._spent += cost

    def _claim_and_call(self, batch: list[tuple[Claim, int]]) -> int:
        """Claim `batch` in one commit (with the outcomes waiting to be committed), then start the
        calls of the recipients actually claimed. Returns how many were not claimed."""
        dry_run = self.options.dry_run
        claimed = self.ledger.claim(
            self.campaign.id,
            self.run_id,
            [c for c, _ in batch],
            dry_run=dry_run,
            settle=self._outcomes,
            sender_id=self.sender_id,
        )
        self._outcomes.clear()
        claimed_ids = {c.recipient_id for c in claimed}
        self._pass_progress += len(batch)
        missed = self._missed(batch, claimed_ids)
        if claimed_ids and not self._may_start_calls():
            # Declared lost (or cut off) while claiming: these calls were never made.
            self._outcomes.extend(
                Settlement(c.recipient_id, AttemptOutcome.ERROR, S.PENDING, None, "not called")
                for c, _ in batch
                if c.recipient_id in claimed_ids
            )
            return missed
        for claim, tries in batch:
            if claim.recipient_id not in claimed_ids or claim.recipient_id in self._flight:
                continue  # no longer pending (changed under us), or called already: never call
            if not tries:
                self.stats.claimed += 1
            request = build_request(self.campaign, claim, self._body(claim), dry_run=dry_run)
            if self.admission is not None:
                self.admission.cap_time_to_live(request)
            self._flight[claim.recipient_id] = (claim, self.clock(), tries)
            self._budget_claimed(claim)
            self.caller.submit(claim.recipient_id, request)
        return missed

    def _missed(self, batch: list[tuple[Claim, int]], claimed_ids: set[int]) -> int:
        """The candidates another sender claimed first (a shared ledger): their slots go back to
        the schedule, and when the batch's last one was taken the rest of the buffer is stale
        (that sender is reading the same ids): read again after it."""
        missed = [c for c, _ in batch if c.recipient_id not in claimed_ids]
        if not missed or not self.ledger.shared_ledger:
            return len(missed)
        if isinstance(self.limiter, SharedRate):
            self.limiter.refund(sum(c.parts for c in missed))
        last, tries = batch[-1]
        if not tries and last.recipient_id not in claimed_ids and not self.options.sample:
            self._buffer.clear()
            self._cursor = last.recipient_id
            self._exhausted = False
        return len(missed)

    def _next_candidate(self) -> tuple[Claim, int] | None:
        if self.admission is not None and not self._admit():
            return None
        now = self.clock()
        if self._retries and self._retries[0].ready_at <= now:
            item = self._retries[0]
            return item.claim, item.tries
        if not self._buffer and not self._exhausted:
            if self.admission is not None:
                batch = self.admission.fetch(after_id=self._cursor, limit=PREFETCH)
                self.stats.suppressed = self.admission.suppressed
            else:
                batch = self.ledger.next_pending(
                    self.campaign.id, after_id=self._cursor, limit=PREFETCH
                )
            if batch:
                self._cursor = batch[-1].recipient_id
                self._buffer.extend(batch)
            elif self._wrap:  # started mid-campaign: now the ids before the start
                self._wrap = False
                self._cursor = 0
                return self._next_candidate()
            elif self._pass_progress and self.ledger.shared_ledger and not self.options.dry_run:
                # Rows may have been skipped as locked by another sender's claim, which may have
                # rolled back: read the campaign once more, until a pass finds nothing to do (a dry
                # run leaves everyone pending: one pass).
                self._pass_progress = 0
                self._cursor = 0
                return self._next_candidate()
            else:
                self._exhausted = True
        if self._buffer:
            return self._buffer[0], 0
        return None

    def _admit(self) -> bool:
        """Apply what the admission says to the candidates fetched; False: claim nothing now."""
        assert self.admission is not None
        verdict = self.admission.check()
        if verdict == Check.GO:
            return True
        self._buffer.clear()
        if verdict == Check.REFETCH:  # a window opened or closed: start again from the first
            self._cursor = 0
            self._exhausted = False
            # Those queued for a retry are pending: fetched again if their window is still open,
            # never sent after it closed.
            self._retries.clear()
            return True
        # The deadline: the pending recipients are expired (those queued for a retry too).
        self.stats.expired = self.admission.expired
        self._exhausted = True
        self._retries.clear()
        return False

    def _when_nothing_to_claim(self, batch: list[tuple[Claim, int]]) -> LaunchWait:
        """No candidate now: the retry queue's wait, or - nothing in flight or queued - what the
        admission says: done (None), seconds to wait for a window, or StopReason.WAITING."""
        wait = self._retry_wait()
        admission = self.admission
        if admission is None or wait is not None or batch or self._flight or not self._exhausted:
            return wait
        if self._given_up and self._only_given_up_pending():
            return None  # the rest is what this run gave up on: the next run retries them
        held = admission.hold()
        self.stats.expired = admission.expired
        if held is None:
            return None
        news = self.stats.waiting is None or _waiting_news(self.stats.waiting) != _waiting_news(
            held
        )
        self.stats.waiting = held
        if held.until is None or self.no_wait:
            return StopReason.WAITING
        if news and self.on_wait is not None:
            self.on_wait(held)
        if self._given_up:
            # Those given up on are pending and inside their window: without this the run would
            # look again at once, find only them, and spin until a window opens for the others.
            return max(admission.seconds_to_wait(), GIVEN_UP_RECHECK)
        return admission.seconds_to_wait()

    def _only_given_up_pending(self) -> bool:
        return self.ledger.count_state(self.campaign.id, S.PENDING) <= len(self._given_up)

    def _retry_wait(self) -> float | None:
        """Seconds until the first queued retry is due (None: no retries queued)."""
        if not self._retries:
            return None
        return max(self._retries[0].ready_at - self.clock(), 0.001)

    def _body(self, claim: Claim) -> str:
        body = self.template.render(claim.fields)
        return gsm_safe(body) if self.campaign.gsm_safe else body

    # -- outcomes --------------------------------------------------------------------------------

    def _record(self, claim: Claim, sent_at: float, tries: int, outcome: Outcome) -> str | None:
        """Record one outcome; returns a halt reason for account-level errors."""
        if outcome.decision is not Decision.RETRY and self._errors:
            self._errors.pop(claim.recipient_id, None)
        self._budget_settled(claim, outcome.decision in (Decision.SENT, Decision.UNKNOWN))
        if outcome.throttled:
            self.stats.throttles += 1
            self.adaptive.on_throttle(sent_at)
            self._follow_adaptive()
        if outcome.decision is Decision.RETRY:
            return self._record_not_sent(claim, tries, outcome)
        self._failing_in_a_row = 0  # an answer about the message itself: the service works
        if outcome.decision is Decision.SENT:
            self._record_accepted(claim, outcome)
            return None
        return self._record_final(claim, outcome)

    def _record_accepted(self, claim: Claim, outcome: Outcome) -> None:
        stats = self.stats
        self.adaptive.on_success(claim.parts)
        self._follow_adaptive()
        rid = claim.recipient_id
        if self.options.dry_run:
            stats.dry_run_ok += 1
            self._outcomes.append(
                Settlement(rid, AttemptOutcome.DRY_RUN, None, outcome.message_id, None)
            )
            return
        stats.sent += 1
        stats.parts_sent += claim.parts
        cost = cost_of(claim.parts, claim.country, self.options.prices)
        if cost is not None:
            stats.spend += cost
        self._outcomes.append(Settlement(rid, AttemptOutcome.SENT, S.SENT, outcome.message_id))

    def _record_not_sent(self, claim: Claim, tries: int, outcome: Outcome) -> str | None:
        """A throttle or a service error: certainly not sent, so back to pending and into this
        run's retry queue (or left pending for the next run after too many tries)."""
        rid = claim.recipient_id
        back = None if self.options.dry_run else S.PENDING  # a claim whose call was not sent
        if outcome.throttled:
            self._failing_in_a_row = 0
        else:
            self._failing_in_a_row += 1
            if self._failing_in_a_row >= self._breaker:
                # A wrong endpoint or an outage: don't walk the whole list retrying each one.
                self._outcomes.append(
                    Settlement(rid, AttemptOutcome.ERROR, back, None, outcome.reason)
                )
                return (
                    f"the service is not answering: {self._failing_in_a_row} calls in a row "
                    f"failed without being sent (last: {outcome.reason})"
                )
        kind = AttemptOutcome.THROTTLED if outcome.throttled else AttemptOutcome.ERROR
        self._outcomes.append(Settlement(rid, kind, back, None, outcome.reason))
        tries += 1
        errors = self._errors.get(rid, 0)
        if not outcome.throttled:
            errors = self._errors[rid] = errors + 1  # throttles never count toward the cap
        delay = retry_delay(outcome, tries, errors=errors)
        if delay is None:
            self._errors.pop(rid, None)
            self._given_up.add(rid)
            self.stats.gave_up += 1
            if self.stats.stop == StopReason.DONE:
                self.stats.stop = StopReason.GAVE_UP
            return None
        self.stats.retries += 1
        heapq.heappush(self._retries, _Retry(self.clock() + delay, next(self._seq), claim, tries))
        return None

    def _record_final(self, claim: Claim, outcome: Outcome) -> str | None:
        """HALT (not sent; returns what to fix), or a final per-recipient answer."""
        stats = self.stats
        rid = claim.recipient_id
        decision = outcome.decision
        reason = outcome.reason or decision.name.lower()
        if decision is Decision.HALT:
            # Not sent (the service refused it for the whole account): back to pending.
            back = None if self.options.dry_run else S.PENDING
            self._outcomes.append(Settlement(rid, AttemptOutcome.ERROR, back, None, reason))
            return reason
        kind = reason.split(":", 1)[-1].strip() or reason
        stats.failures[kind] = stats.failures.get(kind, 0) + 1
        state, recorded = _FINAL[decision]
        if self.options.dry_run:
            stats.failed += 1
            self._outcomes.append(Settlement(rid, recorded, None, None, reason))
            return None
        if state is S.FAILED:
            stats.failed += 1
        elif state is S.OPTED_OUT:
            stats.opted_out += 1
        else:
            stats.unknown += 1
        self._outcomes.append(Settlement(rid, recorded, state, outcome.message_id, reason))
        return None

    # -- several senders: the shared rate, liveness ----------------------------------------------

    def _follow_adaptive(self) -> None:
        """Hand the throttle control's rate to the limiter: on a shared ledger that is the
        identity's schedule row, which every sender on it follows (so a cut is written at once,
        an increase at most 4 times a second)."""
        rate = self.adaptive.rate
        if rate == self._pushed_rate:
            return
        now = self.clock()
        shared = isinstance(self.limiter, SharedRate)
        if shared and rate > self._pushed_rate and now - self._pushed_at < SHARED_RATE_PUSH_SECONDS:
            return
        self._pushed_rate, self._pushed_at = rate, now
        self.limiter.set_rate(rate)

    def _raise_if_lost(self) -> None:
        liveness = self._liveness
        if liveness is None:
            return
        if liveness.lost is None:
            liveness.beat()
        if liveness.lost is not None:
            raise liveness.lost from None

    def _may_start_calls(self) -> bool:
        liveness = self._liveness
        return liveness is None or liveness.healthy()

    def _await_silent_peers(self) -> None:
        """Nothing left to claim, but other senders of the campaign hold claims and have gone
        silent (killed, or cut off): wait until they beat again or are declared lost, so that
        the last sender out leaves no claim `sending` (they become `unknown`)."""
        liveness = self._liveness
        if liveness is None or not self.ledger.shared_ledger:
            return
        opts = self.options
        deadline = time.monotonic() + opts.sender_timeout + 2 * opts.heartbeat_seconds
        silent_for = 2 * opts.heartbeat_seconds
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if liveness.lost is not None:
                return
            if not self.ledger.silent_claims(self.campaign.id, silent_for=silent_for):
                return
            if self.on_progress:
                self.on_progress(self.stats)
            self.stop_requested.wait(min(opts.heartbeat_seconds, 1.0))


# A session idle inside a transaction this long (at least) is ended by the server: a frozen sender's
# locks are released. Not shorter: a busy sender's loop thread can wait a while for the GIL
# between two statements of one transaction.
IDLE_TRANSACTION_FLOOR = 5.0
# The throttle control raises the shared rate at most this often (a cut is written at once).
SHARED_RATE_PUSH_SECONDS = 0.25
# A sender whose heartbeat has failed for this share of the liveness timeout starts no new call:
# well before its peers may declare it lost.
PAUSE_AFTER_SHARE = 0.5


class _Liveness:
    """The sender's heartbeat, in a thread of its own (it must go on while the loop waits, and
    while the user reads the confirmation prompt): every `heartbeat_seconds` it stamps the sender
    live on the database's clock with its rate, keeps the SQLite lock fresh, and on a shared
    ledger declares silent peers lost (their claims, and only theirs, become `unknown`).

    `lost` is set once the registry says this sender was declared lost: the loop then stops
    claiming. `healthy()` is False from then on, and while heartbeats have been failing (the
    ledger unreachable) for half the liveness timeout: no new call starts."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.lost: SenderLost | None = None
        self.last_ok = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaign-heartbeat", daemon=True)
        self._parts_then = 0
        self._then = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def healthy(self) -> bool:
        opts = self.sender.options
        fresh = time.monotonic() - self.last_ok < PAUSE_AFTER_SHARE * opts.sender_timeout
        return self.lost is None and fresh

    def _run(self) -> None:
        interval = self.sender.options.heartbeat_seconds
        while not self._stop.wait(interval if self.healthy() else min(interval, 1.0)):
            self.beat()
            if self.lost is not None:
                return

    def beat(self) -> None:
        sender, ledger = self.sender, self.sender.ledger
        assert sender.sender_id is not None
        now = time.monotonic()
        parts = sender.stats.parts_sent
        rate = (parts - self._parts_then) / max(now - self._then, 1e-3)
        self._parts_then, self._then = parts, now
        try:
            ledger.sender_heartbeat(sender.sender_id, rate=round(rate, 2), rate_note=self._note())
            if sender._locked:
                ledger.heartbeat(sender.campaign.id, sender.token)
            if ledger.shared_ledger:
                ledger.sweep_lost_senders(
                    timeout=sender.options.sender_timeout, by=sender.sender_id
                )
                identity = sender.campaign.origination_identity
                sender.stats.joint_parts_per_second = sum(
                    s.rate or 0.0 for s in ledger.senders_on_identity(identity)
                )
        except SenderLost as lost:
            self.lost = lost
            return
        except Exception:  # the ledger unreachable: try again (no call starts meanwhile)
            return
        self.last_ok = time.monotonic()

    def _note(self) -> str:
        sender = self.sender
        note = sender.adaptive.status().summary()
        if isinstance(sender.limiter, SharedRate):
            note += (
                f"; shared {sender.limiter.rate:g} MPS on {sender.campaign.origination_identity}"
            )
        return note
