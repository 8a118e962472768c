"""The sender's heartbeat thread (campaign.sending.sender._Liveness) against a fake ledger: a
failing heartbeat stops new calls after half the liveness timeout, being declared lost stops them
at once, and a heartbeat that works again lets them start again."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from campaign.ledger.senders import SenderLost
from campaign.sending.sender import SendOptions, SendStats, _Liveness


class FakeLedger:
    shared_ledger = True

    def __init__(self) -> None:
        self.fail: BaseException | None = None
        self.beats: list[tuple[int, float | None]] = []
        self.swept = 0

    def sender_heartbeat(self, sender_id: int, *, rate: float | None, rate_note: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.beats.append((sender_id, rate))

    def sweep_lost_senders(self, *, timeout: float, by: int) -> dict[int, int]:
        self.swept += 1
        return {}

    def senders_on_identity(self, identity: str) -> list[Any]:
        return [SimpleNamespace(rate=10.0), SimpleNamespace(rate=5.0)]


def liveness() -> tuple[_Liveness, FakeLedger]:
    ledger = FakeLedger()
    adaptive = SimpleNamespace(status=lambda: SimpleNamespace(summary=lambda: "100 MPS"))
    sender: Any = SimpleNamespace(
        ledger=ledger,
        sender_id=7,
        options=SendOptions(mps=100, concurrency=4, heartbeat_seconds=1, sender_timeout=10),
        stats=SendStats(),
        adaptive=adaptive,
        limiter=None,
        campaign=SimpleNamespace(id=1, origination_identity="+12065550100"),
        _locked=False,
        token="t",
    )
    return _Liveness(sender), ledger


def test_a_heartbeat_stamps_the_rate_sweeps_and_sums_the_joint_rate() -> None:
    beat, ledger = liveness()
    beat.sender.stats.parts_sent = 30
    beat.beat()
    assert ledger.beats and ledger.beats[0][0] == 7 and (ledger.beats[0][1] or 0) > 0
    assert ledger.swept == 1
    assert beat.sender.stats.joint_parts_per_second == 15.0
    assert beat.healthy()


def test_failing_heartbeats_stop_new_calls_until_one_works(monkeypatch: pytest.MonkeyPatch) -> None:
    beat, ledger = liveness()
    ledger.fail = RuntimeError("connection refused")
    beat.beat()  # fails: no exception out of the thread
    assert beat.healthy()  # not for long enough yet
    beat.last_ok = time.monotonic() - 6  # past half of the 10 s timeout
    assert not beat.healthy()
    ledger.fail = None
    beat.beat()
    assert beat.healthy()


def test_declared_lost_stops_for_good() -> None:
    beat, ledger = liveness()
    ledger.fail = SenderLost("sender 7 was declared lost by another sender")
    beat.beat()
    assert isinstance(beat.lost, SenderLost) and not beat.healthy()
