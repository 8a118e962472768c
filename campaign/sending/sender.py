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
"""

from __future__ import annotations

import heapq
import itertools
import os
import queue
import secrets
import signal
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

from campaign.aws.sms import build_request
from campaign.domain import Campaign, Claim, RecipientState, Settlement
from campaign.errors import UserError
from campaign.ledger import Ledger
from campaign.message import Template, gsm_safe
from campaign.pricing import PriceTable, cost_of
from campaign.sending.callers import Caller
from campaign.sending.pacing import AdaptiveRate, PartsRateLimiter
from campaign.sending.retry import Decision, Outcome, retry_delay

S = RecipientState
HEARTBEAT_SECONDS = 5.0
PREFETCH = 1000
SETTLE_MAX_WAIT = 0.05  # seconds an outcome may wait to be committed with others
PROGRESS_SECONDS = 0.1  # how often the progress callback runs
# Claims are made in bursts at most this often: one commit for several messages. The service's
# bucket holds about a second of traffic, so bursts this short never trip it.
CLAIM_WINDOW = 0.025
SWITCH_INTERVAL = 0.02


class SenderFailed(UserError):
    """The send cannot go on (one line for the user); the ledger is consistent."""


class StopReason:
    DONE = "done"
    INTERRUPTED = "interrupted"
    HALTED = "halted"
    BUDGET = "budget"
    LIMIT = "limit"
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class SendOptions:
    mps: float
    concurrency: int
    dry_run: bool = False
    limit: int | None = None
    budget: Decimal | None = None
    prices: PriceTable | None = None
    sample: list[Claim] | None = None  # dry-run these recipients only (stratified sample)


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
    stop: str = StopReason.DONE
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.sent + self.dry_run_ok + self.failed + self.opted_out + self.unknown

    def parts_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.parts_sent / elapsed if elapsed > 0 else 0.0


class StopSignal:
    """First Ctrl-C/SIGTERM asks the loop to stop claiming; the second exits at once.

    Exiting at once is safe: every commit is atomic, and claims whose calls were in flight are
    found `sending` by the next sender and marked `unknown`."""

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.requested = threading.Event()
        self.on_first = on_first

    def _handler(self, signum: int, _frame: Any) -> None:
        if self.requested.is_set():
            os._exit(3)
        self.requested.set()
        if self.on_first:
            self.on_first()

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in previous:
            signal.signal(s, self._handler)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        on_progress: Callable[[SendStats], None] | None = None,
        stop: StopSignal | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.campaign = campaign
        self._make_caller = caller  # made when the run starts: processes only if needed
        self.caller: Caller
        self.options = options
        self.on_progress = on_progress
        self.stop = stop or StopSignal()
        self.clock = clock
        self.stats = SendStats()
        self.template = Template.parse(campaign.template)
        self.adaptive = AdaptiveRate(options.mps, clock=clock)
        self.limiter = PartsRateLimiter(options.mps, clock=clock)
        self.token = secrets.token_hex(16)
        self.host = socket.gethostname()
        self.run_id = 0
        self._buffer: deque[Claim] = deque()
        self._cursor = 0
        self._exhausted = False
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        # Calls in flight: recipient id -> (claim, when sent, earlier tries in this run).
        self._flight: dict[int, tuple[Claim, float, int]] = {}
        self._failing_in_a_row = 0
        self._breaker = max(20, 2 * options.concurrency)

    # -- lifecycle -------------------------------------------------------------------------------

    def acquire(self) -> int:
        """Take the campaign's sender lock and recover what a dead sender left. Returns how many
        claims were found orphaned (now `unknown`)."""
        self.ledger.acquire_sender(
            self.campaign.id, token=self.token, pid=os.getpid(), host=self.host, is_alive=pid_alive
        )
        return self.ledger.recover_orphans(self.campaign.id)

    def release(self) -> None:
        self.ledger.release_sender(self.campaign.id, self.token)

    def run(self) -> SendStats:
        """Send until nothing is pending, or until stopped. The lock must be held (acquire())."""
        opts = self.options
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
        settle: list[Settlement] = []
        settle_since = 0.0
        last_beat = last_progress = self.clock()
        stopping: str | None = None
        wait_for: float | str | None = None
        exit_code = 0
        returned: list[tuple[int, Outcome]] = []
        next_launch = 0.0
        self.caller = self._make_caller()
        # The calls spend their time waiting on sockets and hand the GIL over at each wait; a
        # longer forced-switch interval saves needless switches between them (measured: boto3
        # from 61 threads at 100 calls/s, 2.45 -> 2.11 ms CPU a call; the tool at 500 MPS,
        # 2.5 -> 2.2 ms a message).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            while True:
                if self.stop.requested.is_set() and stopping is None:
                    stopping = StopReason.INTERRUPTED
                # 1. record the calls that returned (the workers queue them as they finish)
                returned.extend(_drain(self.caller.done))
                for recipient_id, outcome in returned:
                    claim, sent_at, tries = self._flight.pop(recipient_id)
                    halt = self._apply(claim, sent_at, tries, outcome, settle)
                    if halt and stopping is None:
                        stopping = StopReason.HALTED
                        self.stats.halt_reason = halt
                returned.clear()
                now = self.clock()
                if settle and not settle_since:
                    settle_since = now
                # 2. claim and call, as the rate and the free slots allow. Claims go in small
                # bursts (CLAIM_WINDOW) so that one commit carries several messages; outcomes
                # waiting to be saved ride in the same transaction, before the claims.
                if stopping is None and now >= next_launch:
                    wait_for = self._launch(settle)
                    if wait_for is None and not self._flight and not self._retries:
                        break  # nothing pending, nothing in flight: done (or gave up on some)
                    if isinstance(wait_for, str):
                        stopping = wait_for
                    elif isinstance(wait_for, float):
                        next_launch = now + max(wait_for, CLAIM_WINDOW)
                    else:
                        next_launch = now + max(self._retry_wait() or 0.2, CLAIM_WINDOW)
                if settle and (
                    not self._flight
                    or len(settle) >= 256
                    or now - settle_since >= SETTLE_MAX_WAIT
                    or stopping
                ):
                    self.ledger.settle(self.run_id, settle)
                    settle.clear()
                if not settle:
                    settle_since = 0.0
                if stopping is not None and not self._flight:
                    break
                if now - last_beat >= HEARTBEAT_SECONDS:
                    self.ledger.heartbeat(self.campaign.id, self.token)
                    last_beat = now
                if self.on_progress and now - last_progress >= PROGRESS_SECONDS:
                    self.on_progress(self.stats)
                    last_progress = now
                # 3. sleep until a call returns, more may be claimed, or outcomes must be saved
                timeout = 0.2
                if stopping is None:
                    timeout = min(timeout, next_launch - now)
                if settle:
                    timeout = min(timeout, settle_since + SETTLE_MAX_WAIT - now)
                if timeout <= 0:
                    continue
                try:
                    returned.append(self.caller.done.get(timeout=timeout))
                except queue.Empty:
                    if self._flight and not self.caller.healthy():
                        # Its calls in flight may or may not have gone out: they stay
                        # `sending`, and the next run marks them `unknown`.
                        raise SenderFailed(
                            "a worker process making the API calls died; run the same command "
                            "again to resume (the calls it had in flight will be `unknown`)"
                        ) from None
            # Recipients still waiting for a retry are `pending` in the ledger: nothing to undo.
            self._retries.clear()
            if stopping:
                self.stats.stop = stopping
            exit_code = {
                StopReason.DONE: 0,
                StopReason.LIMIT: 0,
                StopReason.INTERRUPTED: 3,
                StopReason.HALTED: 4,
                StopReason.BUDGET: 4,
                StopReason.GAVE_UP: 1,
            }[self.stats.stop]
            return self.stats
        except BaseException:
            exit_code = 1
            raise
        finally:
            if settle:
                self.ledger.settle(self.run_id, settle)
            self.caller.close()
            sys.setswitchinterval(switch_interval)
            self.ledger.end_run(self.run_id, exit_code, self.stats.halt_reason)
            if self.on_progress:
                self.on_progress(self.stats)

    # -- claiming --------------------------------------------------------------------------------

    def _next_candidate(self) -> tuple[Claim, int] | None:
        now = self.clock()
        if self._retries and self._retries[0].ready_at <= now:
            item = self._retries[0]
            return item.claim, item.tries
        if not self._buffer and not self._exhausted:
            batch = self.ledger.next_pending(
                self.campaign.id, after_id=self._cursor, limit=PREFETCH
            )
            if batch:
                self._cursor = batch[-1].recipient_id
                self._buffer.extend(batch)
            else:
                self._exhausted = True
        if self._buffer:
            return self._buffer[0], 0
        return None

    def _launch(self, settle: list[Settlement]) -> float | str | None:
        """Claim as many recipients as the free slots and the rate allow, and start their calls.

        Returns the seconds until more may go (float), a stop reason (str), or None when there is
        nothing left to claim now."""
        opts = self.options
        free = opts.concurrency - len(self._flight)
        batch: list[tuple[Claim, int]] = []
        batch_cost = Decimal(0)  # estimated cost of `batch`, for --budget
        wait_for: float | str | None = None
        while free > len(batch):
            candidate = self._next_candidate()
            if candidate is None:
                wait_for = self._retry_wait()
                break
            claim, tries = candidate
            if (
                not tries
                and opts.limit is not None
                and self.stats.claimed + len(batch) >= opts.limit
            ):
                wait_for = self._retry_wait()
                if wait_for is None and not batch:
                    wait_for = StopReason.LIMIT
                break
            if opts.budget is not None:
                cost = cost_of(claim.parts, claim.country, opts.prices)
                if cost is None:
                    self.stats.halt_reason = (
                        f"no price for country {claim.country or '?'} in the price table, so "
                        "--budget cannot be enforced; add the country to the table"
                    )
                    wait_for = StopReason.BUDGET
                    break
                if self.stats.spend + batch_cost + cost > opts.budget:
                    self.stats.halt_reason = (
                        f"budget reached: ${self.stats.spend:.4f} estimated so far; the next "
                        f"message (${cost:.5f}) would pass --budget ${opts.budget}"
                    )
                    wait_for = StopReason.BUDGET
                    break
                batch_cost += cost
            delay = self.limiter.delay_for(claim.parts)
            if delay > 0:
                wait_for = delay
                break
            self.limiter.try_acquire(claim.parts)
            if tries:
                heapq.heappop(self._retries)
            else:
                self._buffer.popleft()
            batch.append((claim, tries))
        if batch:
            claimed = self.ledger.claim(
                self.campaign.id,
                self.run_id,
                [c for c, _ in batch],
                dry_run=opts.dry_run,
                settle=settle,
            )
            settle.clear()
            claimed_ids = {c.recipient_id for c in claimed}
            for claim, tries in batch:
                if claim.recipient_id not in claimed_ids:
                    continue  # no longer pending (changed under us): never call
                if not tries:
                    self.stats.claimed += 1
                request = build_request(
                    self.campaign, claim, self._body(claim), dry_run=opts.dry_run
                )
                self._flight[claim.recipient_id] = (claim, self.clock(), tries)
                self.caller.submit(claim.recipient_id, request)
            if wait_for is None:
                wait_for = 0.0
        return wait_for

    def _retry_wait(self) -> float | None:
        """Seconds until the first queued retry is due (None: no retries queued)."""
        if not self._retries:
            return None
        return max(self._retries[0].ready_at - self.clock(), 0.001)

    def _body(self, claim: Claim) -> str:
        body = self.template.render(claim.fields)
        return gsm_safe(body) if self.campaign.gsm_safe else body

    # -- outcomes --------------------------------------------------------------------------------

    def _apply(
        self,
        claim: Claim,
        sent_at: float,
        tries: int,
        outcome: Outcome,
        settle: list[Settlement],
    ) -> str | None:
        """Record one outcome; returns a halt reason for account-level errors."""
        stats = self.stats
        rid = claim.recipient_id
        parts = claim.parts
        dry = self.options.dry_run
        back = None if dry else S.PENDING  # the state of a claim whose call was not sent
        decision = outcome.decision
        if outcome.throttled:
            stats.throttles += 1
            self.adaptive.on_throttle(sent_at)
            self.limiter.set_rate(self.adaptive.rate)
        if decision is Decision.SENT:
            self.adaptive.on_success(parts)
            self.limiter.set_rate(self.adaptive.rate)
            if dry:
                stats.dry_run_ok += 1
                settle.append(Settlement(rid, "dry_run", None, outcome.message_id, None))
            else:
                stats.sent += 1
                stats.parts_sent += parts
                cost = cost_of(parts, claim.country, self.options.prices)
                if cost is not None:
                    stats.spend += cost
                settle.append(Settlement(rid, "sent", S.SENT, outcome.message_id, None))
            return None
        if decision is Decision.RETRY and not outcome.throttled:
            self._failing_in_a_row += 1
            if self._failing_in_a_row >= self._breaker:
                # A wrong endpoint or an outage: don't walk the whole list retrying each one.
                settle.append(Settlement(rid, "error", back, None, outcome.reason))
                return (
                    f"the service is not answering: {self._failing_in_a_row} calls in a row "
                    f"failed without being sent (last: {outcome.reason})"
                )
        else:
            self._failing_in_a_row = 0
        if decision is Decision.RETRY:
            tries += 1
            delay = retry_delay(outcome, tries)
            # Certainly not sent: back to pending (and into this run's retry queue).
            settle.append(
                Settlement(
                    rid, "throttled" if outcome.throttled else "error", back, None, outcome.reason
                )
            )
            if delay is None:
                stats.gave_up += 1
                if stats.stop == StopReason.DONE:
                    stats.stop = StopReason.GAVE_UP
                return None
            stats.retries += 1
            heapq.heappush(
                self._retries, _Retry(self.clock() + delay, next(self._seq), claim, tries)
            )
            return None
        reason = outcome.reason or decision.name.lower()
        if decision is Decision.HALT:
            # Not sent (the service refused it for the whole account): back to pending.
            settle.append(Settlement(rid, "error", back, None, reason))
            return reason
        kind = reason.split(":", 1)[-1].strip() or reason
        stats.failures[kind] = stats.failures.get(kind, 0) + 1
        if dry:
            stats.failed += 1
            settle.append(Settlement(rid, decision.name.lower(), None, None, reason))
            return None
        state = {
            Decision.FAILED: S.FAILED,
            Decision.OPTED_OUT: S.OPTED_OUT,
            Decision.UNKNOWN: S.UNKNOWN,
        }[decision]
        if state is S.FAILED:
            stats.failed += 1
        elif state is S.OPTED_OUT:
            stats.opted_out += 1
        else:
            stats.unknown += 1
        settle.append(Settlement(rid, state.value, state, outcome.message_id, reason))
        return None
