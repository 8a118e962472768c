"""Rate limiting in message parts per second, and the throttle control that adjusts the rate.

The service counts MPS in message *parts* (a 3-part message uses 3 of the budget) and behaves like
a token bucket of rate MPS holding about one second's worth of parts. Two pieces keep the sender
just under it:

- `PartsRateLimiter`: a client-side token bucket in parts. Its capacity is small (a fraction of a
  second), so the client never bursts above the service's bucket; a message bigger than the
  capacity still goes, by letting the tokens go negative (debt) instead of waiting forever.
- `AdaptiveRate`: AIMD on ThrottlingException. A throttle cuts the rate (x0.7) and remembers just
  under the rate that failed as a ceiling; successes climb back gradually, but only to that
  ceiling, so the rate settles below a hidden limit instead of oscillating around it. A burst of
  throttles from calls already in flight counts once. After a long quiet spell the ceiling is
  raised slowly again (a probe), in case the limit was raised or the throttle was a fluke.

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

Clock = Callable[[], float]

# Client burst, in seconds of rate. The service's bucket holds ~1 s; keeping ours at 0.2 s leaves
# ~0.8 s for latency jitter and thread scheduling before an early arrival could be throttled.
DEFAULT_BURST_SECONDS = 0.2
# Float slack: after sleeping exactly `delay_for`, the refill must count as enough.
_EPSILON = 1e-9

# AIMD settings, chosen so that a hidden limit below the configured MPS is found in a few steps and
# then held: x0.7 cuts deep enough to let the service's bucket refill, x0.95 keeps the ceiling
# just under the rate that failed, and probes come after 30 quiet seconds, up to 240 s once a
# limit was hit twice at about the same rate (measured in tests/test_pacing.py: < 1% throttles).
DECREASE_FACTOR = 0.7
CEILING_MARGIN = 0.95
HOLDOFF_SECONDS = 1.0
RECOVERY_SECONDS = 10.0
PROBE_AFTER_SECONDS = 30.0
MAX_PROBE_AFTER_SECONDS = 240.0
PLATEAU_TOLERANCE = 0.1
PROBE_STEP = 0.02  # the first probe's increase; doubles with each quiet probe in a row

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


class AdaptiveRate:
    """AIMD on throttles, with a learned ceiling so the rate settles instead of oscillating.

    `rate` stays within [floor, configured_mps]; the floor is 1% of the configured MPS, but at
    least 0.5 parts/s (or half the configured MPS when that is lower), so a storm of throttles
    slows the campaign down without ever stopping it.
    """

    def __init__(self, configured_mps: float, *, clock: Clock = time.monotonic) -> None:
        self._configured = _check_rate(configured_mps)
        self._floor = max(0.01 * self._configured, min(0.5, 0.5 * self._configured))
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = self._configured
        self._ceiling: float | None = None  # None: no throttle seen, the configured MPS is the cap
        self._last_decrease: float | None = None
        self._last_throttle: float | None = None
        self._last_probe = clock()
        self._probe_streak = 0
        self._probe_after = PROBE_AFTER_SECONDS
        self._last_failed_at: float | None = None
        self._throttles = 0
        self._decreases = 0

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
        """The learned ceiling (just under the last rate that was throttled), if any."""
        return self._ceiling

    @property
    def throttles(self) -> int:
        """Every throttle reported, including those ignored as part of an earlier burst."""
        return self._throttles

    @property
    def decreases(self) -> int:
        """How many times the rate was actually cut."""
        return self._decreases

    def on_throttle(self, sent_at: float | None = None) -> None:
        """A call was throttled. `sent_at` is the clock reading when that call was sent.

        Throttles within HOLDOFF_SECONDS of the last decrease are ignored: calls sent before it
        still reach the service during that time and keep its bucket empty. With `sent_at`, a
        slow answer for a call sent before the last decrease is ignored too, however late.
        """
        with self._lock:
            now = self._clock()
            self._throttles += 1
            self._last_throttle = now
            self._probe_streak = 0
            if self._last_decrease is not None and (
                now - self._last_decrease < HOLDOFF_SECONDS
                or (sent_at is not None and sent_at < self._last_decrease)
            ):
                return  # already answered by the last decrease
            failed_at = self.rate
            # Failing again at about the same rate confirms the limit: probe it less often.
            if self._last_failed_at is not None and (
                abs(failed_at - self._last_failed_at) <= PLATEAU_TOLERANCE * self._last_failed_at
            ):
                self._probe_after = min(2.0 * self._probe_after, MAX_PROBE_AFTER_SECONDS)
            else:
                self._probe_after = PROBE_AFTER_SECONDS
            self._last_failed_at = failed_at
            self._ceiling = max(self._floor, failed_at * CEILING_MARGIN)
            self._rate = max(self._floor, failed_at * DECREASE_FACTOR)
            self._last_decrease = now
            self._decreases += 1

    def on_success(self, parts: int) -> None:
        """A call of `parts` parts went through: climb back toward the target."""
        with self._lock:
            now = self._clock()
            self._probe(now)
            target = self._target()
            if self._rate >= target:
                return
            # Additive increase per part delivered (like TCP's per-ACK growth): sending at the
            # full rate climbs from x0.7 back to the target in about RECOVERY_SECONDS, and a
            # sender that is not using its rate does not inflate it.
            slope = target * (1.0 - DECREASE_FACTOR) / RECOVERY_SECONDS  # parts/s per second
            credited_seconds = max(parts, 0) / max(self._rate, self._floor)
            self._rate = min(target, self._rate + slope * credited_seconds)

    def _target(self) -> float:
        if self._ceiling is None:
            return self._configured
        return min(self._configured, self._ceiling)

    def _probe(self, now: float) -> None:
        if self._ceiling is None:
            return
        quiet_since = max(self._last_throttle or 0.0, self._last_probe)
        # The first probe after a decrease waits longer once the limit is confirmed; the rest of
        # a quiet streak follows every PROBE_AFTER_SECONDS.
        wait = self._probe_after if self._probe_streak == 0 else PROBE_AFTER_SECONDS
        if now - quiet_since < wait:
            return
        self._last_probe = now
        # Each quiet probe in a row doubles the step (2%, 4%, 8%...): a ceiling learned just under
        # the limit moves slowly, one left far too low by a storm of throttles recovers in minutes.
        self._ceiling *= 1.0 + min(PROBE_STEP * 2.0**self._probe_streak, 1.0)
        self._probe_streak += 1
        if self._ceiling >= self._configured:
            self._ceiling = None  # back to the configured MPS: nothing learned is left


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
    """The MPS to use when the user gives none, and why (aws-facts.md, from the AWS user guide).

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
