"""The shared MPS (campaign/ledger/rates.py): bookings on both dialects, and several processes
sharing one identity's MPS through one PostgreSQL database, in parts, with one of them killed."""

from __future__ import annotations

import bisect
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from campaign.ledger import rates
from campaign.ledger.engine import make_engine, open_ledger_engine
from campaign.ledger.rates import SharedRate

IDENTITY = "+12065550100"


@pytest.fixture
def engine(sqlite_or_postgres_url: str) -> Engine:
    return open_ledger_engine(sqlite_or_postgres_url)


def test_bookings_follow_each_other_at_the_rate(engine: Engine) -> None:
    rates.set_rate(engine, IDENTITY, 10)
    first = rates.book(engine, IDENTITY, 20, horizon=60)  # 2 s of parts
    second = rates.book(engine, IDENTITY, 5, horizon=60)
    assert first is not None and second is not None
    # An idle schedule starts now (on the database's clock)...
    assert first.db_now - 1 < first.start_at <= first.db_now
    assert first.end_at - first.start_at == pytest.approx(2.0)
    # ...and a busy one right where the last booking ended: no slot is ever handed out twice.
    assert second.start_at == pytest.approx(first.end_at)
    assert second.end_at - second.start_at == pytest.approx(0.5)
    assert (first.mps, second.mps) == (10, 10)


def test_a_schedule_booked_past_the_horizon_is_full(engine: Engine) -> None:
    rates.set_rate(engine, IDENTITY, 10)
    assert rates.book(engine, IDENTITY, 50, horizon=2) is not None  # 5 s ahead now
    assert rates.book(engine, IDENTITY, 1, horizon=2) is None  # ask again later
    assert rates.book(engine, IDENTITY, 1, horizon=60) is not None
    # Other identities have schedules of their own.
    rates.set_rate(engine, "+12065550199", 10)
    assert rates.book(engine, "+12065550199", 1, horizon=2) is not None


def test_set_rate_and_ensure_rate(engine: Engine) -> None:
    assert rates.get_rate(engine, IDENTITY) is None
    assert rates.ensure_rate(engine, IDENTITY, 100) == 100
    assert rates.ensure_rate(engine, IDENTITY, 300) == 100  # joins the existing schedule
    rates.set_rate(engine, IDENTITY, 50)  # the throttle control's lever
    assert rates.get_rate(engine, IDENTITY) == 50
    booking = rates.book(engine, IDENTITY, 5)
    assert booking is not None and booking.end_at - booking.start_at == pytest.approx(0.1)
    with pytest.raises(ValueError, match="positive"):
        rates.set_rate(engine, IDENTITY, 0)
    with pytest.raises(LookupError, match="no rate schedule"):
        rates.book(engine, "+19995550000", 1)


def test_shared_rate_paces_parts(engine: Engine) -> None:
    limiter = SharedRate(engine, IDENTITY, 10)
    started = time.monotonic()
    for _ in range(5):
        limiter.acquire(1)
    # Five slots 0.1 s apart: the last one never comes early (a loaded machine may make it late).
    assert time.monotonic() - started >= 0.4 - 0.01
    assert limiter.rate == 10
    assert abs(limiter.clock_offset - (time.time() - time.monotonic())) < 1
    limiter.close()


def test_a_message_waits_for_the_slot_of_its_last_part(engine: Engine) -> None:
    # 3-part messages at 5 parts/s: slots 0.2 s apart, each message goes at its third slot. The
    # slots of its first parts age while it waits, and must not be thrown away for it.
    limiter = SharedRate(engine, IDENTITY, 5)
    assert limiter.delay_for(3) == pytest.approx(0.4, abs=0.05)
    started = time.monotonic()
    limiter.acquire(3)
    limiter.acquire(3)
    assert time.monotonic() - started >= 0.6 + 0.4 - 0.05 - 0.01
    assert limiter.wasted_parts == 0


def test_slots_too_late_to_use_are_dropped(engine: Engine) -> None:
    # Books 5 parts (50 ms) at a time, and keeps a chunk booked ahead: 10 parts on an idle
    # machine, more when a booking's round trip is slow (the count is not what this checks).
    limiter = SharedRate(engine, IDENTITY, 100, grace=0.025)
    limiter.delay_for(1)
    before = limiter.booked_parts
    assert before >= 10 and before % 5 == 0
    # The sender was busy: every slot booked so far (at most two chunks, 100 ms, ahead of the
    # booking) is now more than 25 ms old.
    time.sleep(0.2)
    limiter.acquire(1)
    assert limiter.wasted_parts == before
    assert limiter.booked_parts > before  # new slots from now on


def test_the_shared_rate_follows_set_rate_from_another_sender(engine: Engine) -> None:
    mine = SharedRate(engine, IDENTITY, 100)
    theirs = SharedRate(engine, IDENTITY, 300)
    assert theirs.rate == 100  # joined the existing schedule
    mine.acquire(1)
    theirs.set_rate(40)
    for _ in range(11):  # past the 10 slots booked at the old rate
        mine.acquire(1)
    assert mine.rate == 40


# -- several processes on one PostgreSQL database ---------------------------------------------------

MPS = 300
DURATION = 5.0
PARTS_CYCLE = (1, 2, 1, 3)  # message sizes, in parts, taken in turn


@dataclass
class JointRun:
    part_times: list[float]  # each part's slot, local monotonic time (system-wide on Linux)
    started: float
    killed_at: float | None

    def max_parts_in_one_second(self) -> int:
        times = self.part_times
        return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))

    def rate_between(self, since: float, until: float) -> float:
        times = self.part_times
        sent = bisect.bisect_left(times, until) - bisect.bisect_left(times, since)
        return sent / (until - since)


def _send_parts(url: str, ready: Any, duration: float, times: Any, count: Any, offset: int) -> None:
    """One sender process: books parts through SharedRate and records each part's slot, the time
    the shared schedule let it go (the time it was recorded would add how late this process ran,
    which on a loaded machine bunches parts together that the schedule kept apart)."""
    limiter = SharedRate(make_engine(url), IDENTITY, MPS)
    ready.wait()
    stop_at = time.monotonic() + duration
    message = offset
    while time.monotonic() < stop_at:
        parts = PARTS_CYCLE[message % len(PARTS_CYCLE)]
        sent_at = limiter.acquire(parts)
        for _ in range(parts):  # shared memory: what was written survives a SIGKILL
            times[count.value] = sent_at
            count.value += 1
        message += 1


def _joint_run(url: str, senders: int, kill_after: float | None = None) -> JointRun:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(senders + 1)
    slots = int(MPS * (DURATION + 2))  # more than one process can ever send
    logs = [(context.Array("d", slots, lock=False), context.Value("i", 0)) for _ in range(senders)]
    processes = [
        context.Process(target=_send_parts, args=(url, ready, DURATION, times, count, n))
        for n, (times, count) in enumerate(logs)
    ]
    for process in processes:
        process.start()
    killed_at = None
    try:
        ready.wait(timeout=120)  # spawning imports the tool: slow on a busy machine
        started = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(processes[0].pid, signal.SIGKILL)  # type: ignore[arg-type]
            killed_at = time.monotonic()
        for process in processes:
            process.join(timeout=DURATION + 60)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes[1 if kill_after else 0 :]] == [0] * (
        senders - (1 if kill_after else 0)
    )
    part_times = sorted(t for times, count in logs for t in times[: count.value])
    return JointRun(part_times, started, killed_at)


@pytest.mark.slow
def test_processes_share_one_mps_in_parts(postgres_url: str) -> None:
    open_ledger_engine(postgres_url).dispose()  # migrated once, before the processes race
    run = _joint_run(postgres_url, senders=4)
    peak = run.max_parts_in_one_second()
    # The first half second includes the processes' own start; the last part may end early.
    steady = run.rate_between(run.started + 0.5, run.started + DURATION - 0.5)
    print(f"\n4 senders at {MPS} parts/s: peak {peak} parts in 1 s, steady {steady:.1f} parts/s")
    assert peak <= MPS * 1.05  # the guarantee: jointly never over the MPS
    # Not stuck: the schedule keeps the senders going, parts go out in every second of the run.
    # How close to the MPS they get is a speed figure (it falls on a loaded machine), measured by
    # `make bench` (multisender), not asserted in a timed test.
    quiet = [
        second
        for second in range(int(DURATION) - 1)
        if run.rate_between(run.started + second, run.started + second + 1) == 0
    ]
    assert not quiet, f"no part went out in second(s) {quiet} of the run"


@pytest.mark.slow
def test_a_killed_sender_never_causes_an_overshoot(postgres_url: str) -> None:
    open_ledger_engine(postgres_url).dispose()
    run = _joint_run(postgres_url, senders=4, kill_after=2.0)
    assert run.killed_at is not None
    peak = run.max_parts_in_one_second()
    after = run.rate_between(run.killed_at + 0.5, run.started + DURATION - 0.5)
    print(
        f"\n4 senders at {MPS} parts/s, one SIGKILLed at 2 s: peak {peak} parts in 1 s, "
        f"{after:.1f} parts/s after the kill"
    )
    assert peak <= MPS * 1.05
    # Its booked slots go unused (at most ~50 ms of them); the others go on: parts go out in
    # every second after the kill (the rate they keep is a figure of `make bench`, not asserted
    # here: it falls on a loaded machine).
    quiet = [
        second
        for second in range(int(run.started + DURATION - run.killed_at) - 1)
        if run.rate_between(run.killed_at + second, run.killed_at + second + 1) == 0
    ]
    assert not quiet, f"no part went out in second(s) {quiet} after the kill"
