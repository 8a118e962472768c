"""Rate limiting in message parts per second, and the throttle control that adjusts the rate.

The service counts MPS in message *parts* (a 3-part message uses 3 of the budget) and behaves like
a token bucket of rate MPS holding about one second's worth of parts. Two pieces keep the sender
just under it:

- `PartsRateLimiter`: a client-side token bucket in parts. Its capacity is small (a fraction of a
  second), so the client never bursts above the service's bucket; a message bigger than the
  capacity still goes, by letting the tokens go negative (debt) instead of waiting forever.
- `AdaptiveRate`: decides the rate from the throttles it is told about (see below).

Why a throttle is not simply a reason to slow down: AWS throttles for the origination identity's
MPS and the account's request rate (both caused by our rate: slowing down makes them stop), and
for transient reasons of its own (not caused by our rate: slowing down changes nothing but the
speed). Round 1 cut x0.7 on every throttle, which drives a sender facing 10% random throttles to
its floor. So `AdaptiveRate` finds out which kind it faces, by experiment, over windows of
outcomes (2 s and 100 calls at least, or 30 s at low rates; counted by arrival, after a settle
time that lets the answers to calls sent before a rate change come in):

- HOLD: send at the target (the configured MPS, or a limit learned below it). A window whose share
  of throttled calls is significantly above the *baseline* (the share already found not to depend
  on the rate; zero until then) is an excess: CONFIRM it with a second, longer window at the same
  rate (the first is often a transient, such as the service's bucket draining).
- TEST: cut to just under what the service accepted meanwhile (at most x0.7; under a limit that
  is its throughput, so the share falls clearly), and measure again. The share fell (a one-sided
  two-proportion z-test at 3 standard errors, by a good part of the excess; an unclear result
  collects more calls): the throttles were the rate's, keep the cut and climb back to just under
  the accepted rate, testing lower still if the share stays above the baseline. It did not fall:
  they were not the rate's, undo the cut; that share becomes the baseline, and throttles at it are
  retried (by the sender) without slowing down.
- Every increase past the last rate known to be fine (the climb after a test, a probe) is on
  trial: an excess over the baseline, pooled over the trial's windows, or the first throttle after
  a clean window when no baseline is known, sends the rate back to it (or to x0.95 of the rate
  that failed, if lower).
- Verdicts expire: the baseline after BASELINE_TTL_SECONDS (re-tested while throttles go on), a
  limit through probes (after quiet spells its ceiling rises 2%, 4%, 8%...), so a limit that
  appears, moves or goes is noticed.

A wrong "not rate-driven" costs retried calls at about the limit's throughput; a wrong
"rate-driven" costs speed until probes undo it; hence a strict test. What it cannot see: a
rate-driven excess of a few % hidden in the noise of a larger random share (retried calls, not
lost throughput), and at one call every few seconds each decision takes minutes of evidence.
At a few calls per second network jitter alone gets calls throttled by a one-message bucket, so
there a learned limit is just under the rate that failed rather than the accepted rate.
`status()` says what was decided and why, for the progress bar, the summary and `status`.

The sender owns both and copies the adaptive rate into the limiter after each outcome:

    adaptive = AdaptiveRate(mps)
    limiter = PartsRateLimiter(mps)
    while (recipient := next_pending()) is not None:
        slots.acquire()  # a free worker first, so tokens are spent when the call really starts
        while (wait := limiter.delay_for(recipient.parts)) > 0:
            settle_finished_calls(timeout=wait)  # handle outcomes while waiting
        limiter.try_acquire(recipient.parts)
        pool.submit(send, recipient, sent_at=time.monotonic())
    # for each finished call (outcome from retry.classify):
    #     adaptive.on_throttle(sent_at) if outcome.throttled else adaptive.on_success(parts)
    #     limiter.set_rate(adaptive.rate)

`concurrency_for` sizes the thread pool, `default_mps` picks the MPS when the user gives none, and
`backoff_delay` is the jittered backoff that retry.py uses between attempts for one recipient.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from campaign.errors import count

Clock = Callable[[], float]

# Client burst, in seconds of rate. The service's bucket holds ~1 s; keeping ours at 0.2 s leaves
# ~0.8 s for latency jitter and thread scheduling before an early arrival could be throttled.
DEFAULT_BURST_SECONDS = 0.2
# Float slack: after sleeping exactly `delay_for`, the refill must count as enough.
_EPSILON = 1e-9

# Climbing and probing (as in round 1): after a cut the rate climbs back to its target in about
# RECOVERY_SECONDS of full-rate sending; a learned limit is held at x0.95 of the estimate, and
# probed after 30 quiet seconds, up to 240 s once a limit was hit twice at about the same rate.
DECREASE_FACTOR = 0.7  # the deepest a test cuts relative to the rate sent (and the climb's unit)
CEILING_MARGIN = 0.95
RECOVERY_SECONDS = 10.0
PROBE_AFTER_SECONDS = 30.0
MAX_PROBE_AFTER_SECONDS = 240.0
PLATEAU_TOLERANCE = 0.1
PROBE_STEP = 0.02  # the first probe's increase; doubles with each quiet probe in a row

# Windows: at least WINDOW_SECONDS and WINDOW_CALLS outcomes, or WINDOW_MAX_SECONDS at low rates;
# never decided on fewer than MIN_WINDOW_CALLS. A clear excess closes a first window at
# EARLY_WINDOW_CALLS, so a real limit at a few MPS is noticed in seconds.
WINDOW_SECONDS = 2.0
WINDOW_CALLS = 100
WINDOW_MAX_SECONDS = 30.0
CONFIRM_WINDOWS = 2  # the confirming window is this many windows long
MIN_WINDOW_CALLS = 10
EARLY_WINDOW_CALLS = 20
# After a rate change, answers to calls sent before it keep coming for about one latency.
SETTLE_SECONDS = 1.0
SETTLE_LATENCIES = 3.0
MAX_SETTLE_SECONDS = 10.0
# An excess: more throttles than the baseline predicts by Z_EXCESS standard deviations (of the
# difference of two samples when the baseline is measured), plus EXCESS_CALLS throttles or
# MIN_EXCESS_SHARE of the calls, whichever is more: a couple of throttles prove nothing.
Z_EXCESS = 3.0
EXCESS_CALLS = 2
MIN_EXCESS_SHARE = 0.005
# The test says "rate-driven" when the share fell by Z_DROP standard errors and by at least
# MIN_DROP of the excess being tested (or the share that succeeds grew by MIN_DROP).
Z_DROP = 3.0
Z_SUGGESTIVE = 1.0  # between the two, a test collects more (at most TEST_MAX_WINDOWS windows)
TEST_MAX_WINDOWS = 4
MIN_DROP = 0.25
JITTER_PROOF_CALLS = 3.0  # calls/s from which the accepted rate estimates a limit (see below)
TEST_MARGIN = 0.9  # test at this much of the parts/s the service accepted while throttling
DEEPEST_TEST_CUT = 0.1  # ...but never below this fraction of the rate being tested
MIN_TEST_SUCCESSES = 10
BASELINE_TTL_SECONDS = 300.0
BASELINE_MAX_CALLS = 5000.0  # the baseline weighs older windows down past this many calls

NO_VERDICT = "none yet"
RATE_DRIVEN = "rate-driven"
NOT_RATE_DRIVEN = "not rate-driven"
_HOLD, _CONFIRM, _TEST = "hold", "confirm", "test"

MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 256
# Headroom over Little's law: latency has a tail, and a pool that is exactly large enough falls
# behind the rate as soon as a few calls are slow.
CONCURRENCY_HEADROOM = 2.0

DRY_RUN_MAX_MPS = 5.0
CONSERVATIVE_MPS = 1.0


def _check_rate(rate: float) -> float:
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be a positive number of parts per second, not {rate!r}")
    return float(rate)


class PartsRateLimiter:
    """A token bucket in message parts. Thread-safe; the clock is injectable for tests."""

    def __init__(
        self,
        mps: float,
        *,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not math.isfinite(burst_seconds) or burst_seconds <= 0:
            raise ValueError(f"burst_seconds must be positive, not {burst_seconds!r}")
        self._burst_seconds = burst_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rate = _check_rate(mps)
        # Start full: the service's own bucket starts full too, and is larger than ours.
        self._tokens = self.capacity
        self._updated = clock()

    @property
    def rate(self) -> float:
        """The allowed rate, in parts per second."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The largest burst, in parts (never below one part, so 1-part messages need no debt)."""
        return max(self._rate * self._burst_seconds, 1.0)

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on; tokens earned so far were earned at the old rate."""
        rate = _check_rate(rate)
        with self._lock:
            self._refill()
            self._rate = rate
            self._tokens = min(self._tokens, self.capacity)

    def delay_for(self, parts: int) -> float:
        """Seconds to wait before a message of `parts` parts may go (0.0 if it may go now)."""
        with self._lock:
            self._refill()
            missing = self._needed(parts) - self._tokens
            return 0.0 if missing <= _EPSILON else missing / self._rate

    def try_acquire(self, parts: int) -> bool:
        """Spend `parts` now if allowed; False (and nothing spent) otherwise."""
        with self._lock:
            self._refill()
            if self._tokens + _EPSILON < self._needed(parts):
                return False
            # May go negative: a message larger than the capacity is paid for by waiting
            # afterwards, which keeps the long-run rate exact without ever deadlocking.
            self._tokens -= parts
            return True

    def acquire(self, parts: int) -> None:
        """Sleep until `parts` may go, then spend them."""
        while not self.try_acquire(parts):
            self._sleep(self.delay_for(parts))

    def _needed(self, parts: int) -> float:
        if parts < 1:
            raise ValueError(f"a message has at least one part, not {parts!r}")
        # Anything above the capacity could never be saved up; a full bucket is enough.
        return min(float(parts), self.capacity)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)  # a clock never runs back, but be safe
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate)


def _mps(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def percent(share: float) -> str:
    """`10%`, `0.5%`: a share of calls as the progress bar and the summaries write it."""
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.1f}%"


@dataclass(frozen=True)
class Window:
    """Outcomes that arrived during one window, at (about) one allowed rate."""

    rate: float  # the allowed rate when the window opened, parts/s
    seconds: float
    calls: int  # successes and throttles (other outcomes say nothing about throttling)
    throttled: int
    accepted_parts: int
    sent_parts: float  # accepted parts plus throttled ones (estimated when not reported)

    @property
    def share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0

    @property
    def accepted_rate(self) -> float:
        return self.accepted_parts / self.seconds if self.seconds > 0 else 0.0

    @property
    def sent_rate(self) -> float:
        return self.sent_parts / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Tally:
    start: float
    rate: float
    calls: int = 0
    throttled: int = 0
    accepted_parts: int = 0
    throttled_parts: int = 0  # of the throttles whose size was reported
    throttled_unsized: int = 0

    def close(self, now: float, mean_parts: float) -> Window:
        sent = self.accepted_parts + self.throttled_parts + self.throttled_unsized * mean_parts
        return Window(
            self.rate, now - self.start, self.calls, self.throttled, self.accepted_parts, sent
        )


@dataclass(frozen=True)
class _Test:
    before: Window
    rate_before: float
    rate_after: float
    retest: bool = False  # of an expired baseline: if the share falls, it was not all random


@dataclass(frozen=True)
class _Evidence:
    rate_before: float
    share_before: float
    rate_after: float
    share_after: float


@dataclass(frozen=True)
class ControlStatus:
    """What the throttle control is doing and why: for the progress bar, summary and `status`."""

    configured: float
    rate: float  # sending at now, parts/s
    holding: float  # the rate it holds (and returns to after a test)
    verdict: str  # NO_VERDICT, RATE_DRIVEN or NOT_RATE_DRIVEN
    testing: bool  # cut for now, to see whether the throttles depend on the rate
    reason: str  # one line for a human
    calls: int  # successes and throttles reported in this run
    throttles: int
    recent_share: float | None  # share of throttled calls in the last window, None before one

    @property
    def run_share(self) -> float | None:
        return self.throttles / self.calls if self.calls else None

    @property
    def share(self) -> float:
        """The share of calls throttled: of the last window, else of the whole run (0 before any)."""
        share = self.recent_share if self.recent_share is not None else self.run_share
        return share or 0.0

    def summary(self) -> str:
        """A few words for a progress bar: `throttled 10% (not rate-driven: holding 200 MPS)`."""
        if not self.throttles:
            return f"{_mps(self.rate)} MPS"
        head = f"throttled {percent(self.share)}"
        if self.testing:
            return f"{head} (testing at {_mps(self.rate)} MPS)"
        if self.verdict == RATE_DRIVEN:
            return f"{head} (rate-driven: slowed to {_mps(self.holding)} MPS)"
        if self.verdict == NOT_RATE_DRIVEN:
            return f"{head} (not rate-driven: holding {_mps(self.holding)} MPS)"
        return f"{head} ({_mps(self.rate)} MPS)"


def _drop_z(before: Window, calls: int, throttled: int) -> float:
    """How many standard errors the share of throttled calls fell from `before` (a one-sided
    two-proportion z statistic; 0 when neither window has any throttle, or none succeeded)."""
    pooled = (before.throttled + throttled) / (before.calls + calls)
    spread = math.sqrt(pooled * (1.0 - pooled) * (1.0 / before.calls + 1.0 / calls))
    return (before.share - throttled / calls) / spread if spread > 0 else 0.0


def _limit_estimate(window: Window, failed_at: float) -> float:
    """The limit, from a window throttled at `failed_at` parts/s: what the service accepted
    meanwhile, when its bucket held enough messages for that to be the limit; else `failed_at`.

    A bucket of one second at a few messages per second is throttled by network jitter alone at
    rates it allows, accepting far less than the limit; at JITTER_PROOF_CALLS calls per second a
    bucket absorbs jitter, and one kept empty accepts exactly the limit.
    """
    calls_per_second = window.calls / window.seconds if window.seconds > 0 else 0.0
    if calls_per_second < JITTER_PROOF_CALLS:
        return failed_at
    return min(failed_at, window.accepted_rate)


class AdaptiveRate:
    """The send rate, adjusted by experiment to throttles that depend on it (module docstring).

    `rate` stays within [floor, configured_mps]; the floor is 1% of the configured MPS, but at
    least 0.5 parts/s (or half the configured MPS when that is lower), so a real limit far below
    the configured MPS slows the campaign down without ever stopping it. Thread-safe.
    """

    def __init__(self, configured_mps: float, *, clock: Clock = time.monotonic) -> None:
        self._configured = _check_rate(configured_mps)
        self._floor = max(0.01 * self._configured, min(0.5, 0.5 * self._configured))
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._rate = self._configured
        self._ceiling: float | None = None  # a learned limit; None: the configured MPS is the cap
        self._verified: float | None = None  # the highest rate known to be under that limit
        self._trial_calls = self._trial_throttled = 0  # since the rate went past it
        self._phase = _HOLD
        self._window = _Tally(now, self._rate)
        self._last_window: Window | None = None
        self._test: _Test | None = None
        # The baseline: the share of throttled calls found not to depend on the rate.
        self._base_calls = 0.0
        self._base_throttled = 0.0
        self._base_since: float | None = None
        self._base_rate = 0.0  # the highest rate it was measured at
        self._limit_found: _Evidence | None = None
        self._random_found: _Evidence | None = None
        self._last_limited: float | None = None
        self._last_probe = now
        self._probe_streak = 0
        self._probe_after = PROBE_AFTER_SECONDS
        self._last_failed_at: float | None = None
        self._latency = 0.0  # slowest recent answer to a throttled call, seconds
        self._calls = 0
        self._throttles = 0
        self._accepted_calls = 0
        self._accepted_parts = 0
        self._decreases = 0
        self._undone = 0

    # -- what the sender reads -------------------------------------------------------------------

    @property
    def configured(self) -> float:
        return self._configured

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def rate(self) -> float:
        """The rate to send at now, in parts per second."""
        return min(self._configured, max(self._floor, self._rate))

    @property
    def ceiling(self) -> float | None:
        """The learned limit it holds (or climbs to), if any."""
        return self._ceiling

    @property
    def throttles(self) -> int:
        """Every throttle reported."""
        return self._throttles

    @property
    def decreases(self) -> int:
        """How many times the rate was cut (tests, some undone, and failed increases)."""
        return self._decreases

    @property
    def undone(self) -> int:
        """How many cuts were undone because the throttles did not depend on the rate."""
        return self._undone

    @property
    def verdict(self) -> str:
        """RATE_DRIVEN while a learned limit holds the rate down; NOT_RATE_DRIVEN when throttles
        were found not to depend on the rate; else NO_VERDICT."""
        if self._ceiling is not None:
            return RATE_DRIVEN
        return NOT_RATE_DRIVEN if self._random_found is not None else NO_VERDICT

    @property
    def holding(self) -> float:
        """The rate it holds: its target, or during a test the rate it will return to."""
        if self._test is not None:
            return self._test.rate_before
        return self._target()

    def status(self) -> ControlStatus:
        with self._lock:
            last = self._last_window
            return ControlStatus(
                configured=self._configured,
                rate=self.rate,
                holding=self.holding,
                verdict=self.verdict,
                testing=self._phase == _TEST,
                reason=self._reason(),
                calls=self._calls,
                throttles=self._throttles,
                recent_share=last.share if last is not None else None,
            )

    # -- what the sender reports -----------------------------------------------------------------

    def on_throttle(self, sent_at: float | None = None, parts: int | None = None) -> None:
        """A call was throttled. `sent_at`: the clock reading when it was sent (for the latency,
        so the answers to calls sent before a rate change are waited out); `parts`: its size."""
        with self._lock:
            now = self._clock()
            self._throttles += 1
            if sent_at is not None:
                self._latency = max(now - sent_at, 0.98 * self._latency)
            if not self._count(now):
                return
            self._window.throttled += 1
            if parts is None:
                self._window.throttled_unsized += 1
            else:
                self._window.throttled_parts += parts
            last = self._last_window
            if self._on_trial() and not self._base_calls and last and not last.throttled:
                # Sped up past the last rate known to be fine, after a window without a single
                # throttle and with none known to come at any rate: the speed-up did it.
                self._fail_increase(now, None)
            else:
                self._maybe_close(now)

    def on_success(self, parts: int, sent_at: float | None = None) -> None:
        """A call of `parts` parts went through. (`sent_at` is accepted for symmetry; windows
        count answers by arrival, so it is not needed.)"""
        with self._lock:
            now = self._clock()
            parts = max(parts, 0)
            self._accepted_calls += 1
            self._accepted_parts += parts
            if self._count(now):
                self._window.accepted_parts += parts
                self._maybe_close(now)
            if self._phase == _HOLD:
                self._climb(parts)

    def _count(self, now: float) -> bool:
        """Count one call in the run and, unless it answers from before a change, in the window."""
        self._calls += 1
        if now < self._window.start:
            return False
        self._window.calls += 1
        return True

    def _on_trial(self) -> bool:
        """Sending above the last rate known to be fine (climbing back, or probing)?"""
        return (
            self._phase == _HOLD
            and self._verified is not None
            and self._rate > self._verified * (1.0 + 1e-9)
        )

    # -- windows and the state machine -----------------------------------------------------------

    def _open(self, now: float, *, settle: bool) -> None:
        wait = min(max(SETTLE_SECONDS, SETTLE_LATENCIES * self._latency), MAX_SETTLE_SECONDS)
        self._window = _Tally(now + (wait if settle else 0.0), self.rate)

    def _maybe_close(self, now: float) -> None:
        w = self._window
        elapsed = now - w.start
        if w.calls < MIN_WINDOW_CALLS or elapsed < WINDOW_SECONDS:
            return
        # The confirming window is the test's "before": its noise weighs on every test, so it
        # is larger (under a limit the service accepts about the limit meanwhile anyway).
        size = CONFIRM_WINDOWS if self._phase == _CONFIRM else 1
        if elapsed < size * WINDOW_SECONDS:
            return
        full = w.calls >= size * WINDOW_CALLS or elapsed >= WINDOW_MAX_SECONDS
        if self._phase != _HOLD and w.calls - w.throttled < MIN_TEST_SUCCESSES:
            # A test compares shares: a window of almost only throttles needs some successes
            # to say anything (under a limit far below the rate, they come at the limit's pace).
            full = elapsed >= TEST_MAX_WINDOWS * WINDOW_MAX_SECONDS
        # Only a first look may close early: the confirming window is the test's "before", and
        # one that closed because it looked bad would overstate the share (and the test's drop).
        early = (
            self._phase == _HOLD
            and w.calls >= EARLY_WINDOW_CALLS
            and self._exceeds(w.calls, w.throttled)
        )
        if not (full or early) or (self._phase == _TEST and self._undecided(w, elapsed)):
            return
        mean_parts = self._accepted_parts / self._accepted_calls if self._accepted_calls else 1.0
        window = w.close(now, mean_parts)
        self._last_window = window
        self._decide(window, now)

    def _decide(self, window: Window, now: float) -> None:
        """The state machine's step at the end of each window."""
        if self._phase == _TEST:
            self._conclude(window, now)
        elif self._baseline_expired(now) and window.throttled:
            self._begin_test(window, now, retest=True)  # still throttled: still not the rate's?
        elif self._on_trial():
            # Every window since we sped up, pooled: a small excess shows in a minute of them
            # long before it shows in any one.
            self._trial_calls += window.calls
            self._trial_throttled += window.throttled
            if self._exceeds(window.calls, window.throttled) or self._exceeds(
                self._trial_calls, self._trial_throttled
            ):
                self._fail_increase(now, window)
            else:
                self._absorb(window, now)
                self._open(now, settle=False)
                self._probe(now)
        elif not self._exceeds(window.calls, window.throttled):
            self._phase = _HOLD
            self._absorb(window, now)
            self._open(now, settle=False)
            self._probe(now)
        elif self._phase == _CONFIRM:
            self._begin_test(window, now)
        else:
            self._phase = _CONFIRM  # the rate stays put while a second window confirms
            self._open(now, settle=False)

    def _baseline(self) -> tuple[float, float]:
        """(share, calls measured) of the rate-independent throttles; (0, 0) when none known."""
        if not self._base_calls:
            return 0.0, 0.0
        return self._base_throttled / self._base_calls, self._base_calls

    def _exceeds(self, calls: int, throttled: int) -> bool:
        share, measured = self._baseline()
        variance = calls * share * (1.0 - share) * (1.0 + calls / measured) if measured else 0.0
        allowed = calls * share + Z_EXCESS * math.sqrt(variance)
        return throttled > allowed + max(EXCESS_CALLS, MIN_EXCESS_SHARE * calls)

    def _baseline_expired(self, now: float) -> bool:
        return self._base_since is not None and now - self._base_since > BASELINE_TTL_SECONDS

    def _forget_baseline(self) -> None:
        self._base_calls = self._base_throttled = 0.0
        self._base_since = None

    def _absorb(self, window: Window, now: float) -> None:
        """A window at the baseline refines it. An old baseline is tested again while throttles
        go on (see _maybe_close), and forgotten once a window has none."""
        if self._base_since is None:
            return
        if self._baseline_expired(now):
            self._forget_baseline()
            return
        if window.rate > self._base_rate * (1.0 + PLATEAU_TOLERANCE):
            return  # measured only up to about that rate: above it, a share may be the rate's
        self._base_calls += window.calls
        self._base_throttled += window.throttled
        if self._base_calls > BASELINE_MAX_CALLS:
            keep = BASELINE_MAX_CALLS / self._base_calls
            self._base_calls *= keep
            self._base_throttled *= keep

    # -- the test --------------------------------------------------------------------------------

    def _begin_test(self, before: Window, now: float, *, retest: bool = False) -> None:
        rate = self._rate
        # Just under what the service accepted meanwhile: under a limit that is what it allows,
        # so a rate-driven share falls to the baseline and the test is clear-cut.
        below_accepted = min(DECREASE_FACTOR * before.sent_rate, TEST_MARGIN * before.accepted_rate)
        trial = min(max(below_accepted, DEEPEST_TEST_CUT * rate), DECREASE_FACTOR * rate)
        trial = max(trial, self._floor)
        if trial >= CEILING_MARGIN * rate:  # at the floor: nothing to test with, hold it
            self._phase = _HOLD
            if self._ceiling is not None and self._verified is None:
                self._verified = rate  # the lowest it goes: probes start from here
            self._open(now, settle=False)
            return
        self._test = _Test(before, rate, trial, retest)
        self._phase = _TEST
        self._rate = trial
        self._decreases += 1
        self._open(now, settle=True)

    def _undecided(self, w: _Tally, elapsed: float) -> bool:
        """A test window whose drop is suggestive but not yet significant collects more calls
        (up to TEST_MAX_WINDOWS windows): at a few calls per second, that is what decides."""
        test = self._test
        assert test is not None
        if (
            w.calls >= TEST_MAX_WINDOWS * WINDOW_CALLS
            or elapsed >= TEST_MAX_WINDOWS * WINDOW_MAX_SECONDS
        ):
            return False
        return Z_SUGGESTIVE <= _drop_z(test.before, w.calls, w.throttled) < Z_DROP

    def _conclude(self, after: Window, now: float) -> None:
        test = self._test
        assert test is not None
        before = test.before
        share = self._baseline()[0]
        # Significant, and large: a good part of the excess, or (when nearly every call was
        # throttled, as under a limit far below the rate) a good gain in the share that succeeds.
        drop = before.share - after.share
        gained = (1.0 - after.share) >= (1.0 + MIN_DROP) * (1.0 - before.share)
        fell = _drop_z(before, after.calls, after.throttled) >= Z_DROP and (
            drop >= MIN_DROP * (before.share - share) or gained
        )
        if not fell:
            self._conclude_not_rate_driven(before, after, now)
            return
        self._learn_limit(test, after, now)
        if test.retest:
            self._forget_baseline()
        if self._exceeds(after.calls, after.throttled):
            self._begin_test(after, now)  # still above the baseline: the limit is lower still
        else:
            self._verified = test.rate_after
            self._phase = _HOLD
            self._open(now, settle=False)

    def _conclude_not_rate_driven(self, before: Window, after: Window, now: float) -> None:
        """The share did not fall with the rate: undo the cut; the share is the new baseline."""
        test = self._test
        assert test is not None
        self._test = None
        self._random_found = _Evidence(test.rate_before, before.share, test.rate_after, after.share)
        self._base_calls = float(before.calls + after.calls)
        self._base_throttled = float(before.throttled + after.throttled)
        self._base_since = now
        self._base_rate = test.rate_before
        self._undone += 1
        if self._ceiling is not None:  # under a limit, this rate's throttles were not its fault
            self._verified = max(self._verified or 0.0, min(test.rate_before, self._ceiling))
            self._trial_calls = self._trial_throttled = 0
        self._rate = min(test.rate_before, self._target())
        self._phase = _HOLD
        self._open(now, settle=True)

    def _learn_limit(self, test: _Test, after: Window, now: float) -> None:
        """The share fell with the rate: a limit between the two rates. Climb back toward just
        under it (the estimate: what the service accepted, see _limit_estimate); the climb is on
        trial (see _fail_increase)."""
        self._test = None
        self._verified = None  # set again once a rate under this limit is known
        self._note_failure(test.rate_before, now)
        limit = _limit_estimate(test.before, test.rate_before)
        self._ceiling = min(max(self._floor, CEILING_MARGIN * limit), self._configured)
        self._limit_found = _Evidence(
            test.rate_before, test.before.share, test.rate_after, after.share
        )

    def _fail_increase(self, now: float, window: Window | None) -> None:
        """Throttled above the baseline after speeding up past the verified rate: back to it, or
        to just under the rate that failed if that is lower (a rate held quietly for a while can
        still be a little over a limit, its bucket draining slowly), then climb again only to just
        under the limit. A limit far below the verified rate is left to a test, like any other:
        a trial's window may be a statistical fluke, so it only undoes the trial."""
        assert self._verified is not None
        failed_at = self._rate
        self._note_failure(failed_at, now)
        back_to = max(self._floor, min(self._verified, CEILING_MARGIN * failed_at))
        limit = failed_at if window is None else _limit_estimate(window, failed_at)
        self._ceiling = min(max(back_to, CEILING_MARGIN * limit), self._configured)
        self._verified = self._rate = back_to
        self._decreases += 1
        self._phase = _HOLD
        self._open(now, settle=True)

    def _note_failure(self, failed_at: float, now: float) -> None:
        # Failing again at about the same rate confirms the limit: probe it less often.
        if self._last_failed_at is not None and (
            abs(failed_at - self._last_failed_at) <= PLATEAU_TOLERANCE * self._last_failed_at
        ):
            self._probe_after = min(2.0 * self._probe_after, MAX_PROBE_AFTER_SECONDS)
        else:
            self._probe_after = PROBE_AFTER_SECONDS
        self._last_failed_at = failed_at
        self._last_limited = now
        self._probe_streak = 0
        self._trial_calls = self._trial_throttled = 0

    # -- climbing back and probing ---------------------------------------------------------------

    def _target(self) -> float:
        if self._ceiling is None:
            return self._configured
        return min(self._configured, self._ceiling)

    def _climb(self, parts: int) -> None:
        target = self._target()
        if self._rate >= target:
            return
        # Additive increase per part delivered (like TCP's per-ACK growth): sending at the full
        # rate climbs from x0.7 back to the target in about RECOVERY_SECONDS, and a sender that
        # is not using its rate does not inflate it.
        slope = target * (1.0 - DECREASE_FACTOR) / RECOVERY_SECONDS  # parts/s per second
        credited_seconds = parts / max(self._rate, self._floor)
        self._rate = min(target, self._rate + slope * credited_seconds)

    def _probe(self, now: float) -> None:
        """After a quiet spell under a learned limit, raise it a little (on trial)."""
        if self._verified is None:
            return
        quiet_since = max(self._last_limited or 0.0, self._last_probe)
        # The first probe after a limit was found waits longer once it is confirmed; the rest of
        # a quiet streak follows every PROBE_AFTER_SECONDS.
        wait = self._probe_after if self._probe_streak == 0 else PROBE_AFTER_SECONDS
        if now - quiet_since < wait:
            return
        self._last_probe = now
        self._trial_calls = self._trial_throttled = 0
        if self._ceiling is None:
            self._verified = None  # the configured MPS held quietly: nothing is on trial
            return
        # What held quietly this long is under the limit; the raise is what goes on trial.
        self._verified = max(self._verified or 0.0, min(self._rate, self._ceiling))
        # Each quiet probe in a row doubles the step (2%, 4%, 8%...): a ceiling learned just under
        # the limit moves slowly, one left far too low recovers in minutes.
        self._ceiling *= 1.0 + min(PROBE_STEP * 2.0**self._probe_streak, 1.0)
        self._probe_streak += 1
        if self._ceiling >= self._configured:
            self._ceiling = None  # back to the configured MPS, on trial until the next quiet spell

    # -- the one-line reason ---------------------------------------------------------------------

    def _reason(self) -> str:
        last = self._last_window
        if self._test is not None:
            t = self._test
            return (
                f"{percent(t.before.share)} of calls throttled at {_mps(t.rate_before)} MPS: "
                f"trying {_mps(t.rate_after)} MPS to see whether our rate is the cause"
            )
        if self._phase == _CONFIRM and last is not None:
            return (
                f"{percent(last.share)} of calls throttled at {_mps(self.rate)} MPS: "
                "checking that it lasts"
            )
        random_part = ""
        if self._random_found is not None:
            r = self._random_found
            random_part = (
                f"{percent(r.share_before)} of calls throttled at {_mps(r.rate_before)} and "
                f"{percent(r.share_after)} at {_mps(r.rate_after)} MPS: not caused by our rate"
            )
        holding = _mps(self._target())
        if self._ceiling is not None and self._limit_found is not None:
            f = self._limit_found
            text = (
                f"throttled {percent(f.share_before)} at {_mps(f.rate_before)} MPS and "
                f"{percent(f.share_after)} at {_mps(f.rate_after)} MPS: a limit below "
                f"{_mps(f.rate_before)} MPS; holding {holding} MPS"
            )
            return f"{text} ({random_part})" if random_part else text
        if random_part:
            return f"{random_part}; holding {holding} MPS and retrying them"
        if self._limit_found is not None:
            return f"the limit found earlier is gone (probed back up); holding {holding} MPS"
        if self._throttles:
            throttled = count(self._throttles, "throttled call")
            return f"{throttled}, too few to act on; holding {holding} MPS"
        return f"no throttles; holding {holding} MPS"


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.2,
    cap: float = 20.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry): "full jitter".

    A uniform draw in [0, min(cap, base * 2**(attempt-1))]; the jitter spreads the retries of many
    recipients throttled at the same moment, so they don't come back as one burst.
    """
    exponent = min(max(attempt, 1) - 1, 60)  # 2**60 is past any cap; avoids float overflow
    ceiling = min(cap, base * 2.0**exponent)
    return rng() * ceiling


def concurrency_for(mps: float, expected_latency_s: float = 0.3, mean_parts: float = 1.0) -> int:
    """Calls in flight needed to reach `mps` when each call takes `expected_latency_s`.

    Little's law: in flight = calls per second x latency, with headroom for slow calls; clamped to
    [1, 256]. Fewer is better past that point: a crash leaves at most this many `unknown`.
    """
    _check_rate(mps)
    if not math.isfinite(expected_latency_s) or expected_latency_s < 0:
        raise ValueError(f"expected_latency_s must be >= 0, not {expected_latency_s!r}")
    if not math.isfinite(mean_parts) or mean_parts < 1:
        raise ValueError(f"mean_parts must be >= 1, not {mean_parts!r}")
    calls_per_second = mps / mean_parts
    needed = math.ceil(calls_per_second * expected_latency_s * CONCURRENCY_HEADROOM) + 1
    return max(MIN_CONCURRENCY, min(MAX_CONCURRENCY, needed))


def default_mps(
    number_type: str | None, iso_country: str | None, *, dry_run: bool = False
) -> tuple[float, str]:
    """The MPS to use when the user gives none, and why (docs/aws-facts.md, "Throughput", from
    the AWS user guide).

    `number_type` is DescribePhoneNumbers' NumberType (SHORT_CODE, LONG_CODE, TOLL_FREE, TEN_DLC,
    SIMULATOR) or SENDER_ID; no API returns an identity's real MPS, so anything not in the table
    gets a conservative 1 MPS and a hint to pass --mps.
    """
    kind = (number_type or "").strip().upper().replace("-", "_")
    country = (iso_country or "").strip().upper() or None
    where = f"{country} " if country else ""
    mps, why = _default_for(kind, country, where)
    if dry_run and mps > DRY_RUN_MAX_MPS:
        return DRY_RUN_MAX_MPS, f"{why}; dry runs are capped at 5 MPS by AWS"
    if dry_run:
        return mps, f"{why} (dry runs allow at most 5 MPS)"
    return mps, why


def _default_for(kind: str, country: str | None, where: str) -> tuple[float, str]:
    unknown = f"pass --mps with the MPS of your origination identity (default {CONSERVATIVE_MPS:g})"
    if kind == "SHORT_CODE":
        if country in (None, "US", "CA"):
            return 100.0, f"{where or 'US/CA '}short code: 100 MPS (AWS default)"
        return CONSERVATIVE_MPS, f"{where}short code: no documented default; {unknown}"
    if kind == "TOLL_FREE":
        if country in (None, "US"):
            return 3.0, "US toll-free number: 3 MPS (AWS default)"
        return CONSERVATIVE_MPS, f"{where}toll-free number: no documented default; {unknown}"
    if kind == "TEN_DLC":
        return 1.0, (
            "US 10DLC number: 1 MPS (AWS default per number); "
            "pass --mps if your 10DLC campaign was approved for more"
        )
    if kind == "LONG_CODE":
        if country == "CA":
            return 1.0, "CA long code: 1 MPS (AWS default)"
        if country is not None:
            return 10.0, f"{where}long code: 10 MPS (AWS default outside Canada)"
        return CONSERVATIVE_MPS, f"long code in an unknown country: {unknown}"
    if kind == "SENDER_ID":
        return 10.0, f"{where}sender ID: about 10 MPS (AWS default; varies by country)"
    if kind == "SIMULATOR":
        # AWS documents no MPS for simulator numbers; 1 MPS is slow but never throttled.
        return CONSERVATIVE_MPS, f"{where}simulator number: no documented default; {unknown}"
    shown = kind or "unknown"
    return CONSERVATIVE_MPS, f"origination type {shown}: no known default; {unknown}"
