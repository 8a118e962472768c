"""campaign.domain's rules: the sender liveness rule and the stop reasons' exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from campaign.domain import AttemptOutcome, StopReason, now, pid_alive, sender_alive
from campaign.errors import ExitCode

HERE = "this-host"


@dataclass(frozen=True)
class Lock:
    sender_pid: int | None
    sender_host: str | None
    sender_heartbeat: datetime | None


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


DEAD = dead_pid()
FRESH = timedelta(seconds=5)
SILENT = timedelta(seconds=61)


@pytest.mark.parametrize(
    ("pid", "host", "age", "alive"),
    [
        (os.getpid(), HERE, FRESH, True),  # here, running, beating
        (DEAD, HERE, FRESH, False),  # here and gone: dead at once, not 60 s later
        (DEAD, "there", FRESH, True),  # elsewhere: its pid means nothing here
        (os.getpid(), HERE, SILENT, False),  # silent for over a minute: dead anywhere
        (DEAD, "there", SILENT, False),
        (None, None, None, False),  # no lock at all
    ],
    # Ids that do not name pids, so that every pytest process collects the same tests.
    ids=["running-here", "dead-here", "elsewhere", "silent-here", "silent-elsewhere", "no-lock"],
)
def test_sender_alive(
    pid: int | None, host: str | None, age: timedelta | None, alive: bool
) -> None:
    stamp = now()
    lock = Lock(pid, host, None if age is None else stamp - age)
    assert sender_alive(lock, at=stamp, this_host=HERE) is alive


def test_naive_heartbeats_from_sqlite_are_utc() -> None:
    stamp = now()
    lock = Lock(os.getpid(), HERE, (stamp - FRESH).replace(tzinfo=None))
    assert sender_alive(lock, at=stamp, this_host=HERE)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid()) and not pid_alive(DEAD) and not pid_alive(None)


def test_stop_reasons_map_to_spec_exit_codes() -> None:
    assert {r: r.exit_code for r in StopReason} == {
        StopReason.DONE: ExitCode.OK,
        StopReason.LIMIT: ExitCode.OK,
        StopReason.INTERRUPTED: ExitCode.INTERRUPTED,
        StopReason.HALTED: ExitCode.HALTED,
        StopReason.BUDGET: ExitCode.HALTED,
        StopReason.GAVE_UP: ExitCode.ERROR,
        StopReason.WAITING: ExitCode.WAITING,
    }


def test_attempt_outcomes_are_stored_as_plain_strings() -> None:
    assert [str(o) for o in AttemptOutcome] == [
        "sent",
        "dry_run",
        "throttled",
        "error",
        "failed",
        "opted_out",
        "unknown",
    ]
    assert AttemptOutcome.OPTED_OUT == "opted_out"
