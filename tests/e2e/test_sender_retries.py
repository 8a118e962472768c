"""The sender's retry queue with scripted answers (no network): throttles never count toward the
bound on service errors (issue 8), so a recipient whose calls were throttled a few times and then
met a 500 or two is still sent in the same run; and what `send` shows of the throttling."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from campaign.sending.callers import Done
from campaign.sending.retry import MAX_TRANSIENT_ATTEMPTS, Decision, Outcome
from campaign.sending.sender import Sender, SendOptions, SendStats
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow

THROTTLED = Outcome(Decision.RETRY, "ThrottlingException", throttled=True)
SERVER_ERROR = Outcome(Decision.RETRY, "InternalServerException")


class ScriptedCaller:
    """Answers each call at once from a script per destination; the last answer repeats."""

    def __init__(self, scripts: dict[str, list[Outcome]]) -> None:
        self.done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self.scripts = {phone: iter(script) for phone, script in scripts.items()}
        self.calls: dict[str, int] = {}

    def submit(self, key: int, request: dict[str, Any]) -> None:
        phone = request["DestinationPhoneNumber"]
        self.calls[phone] = self.calls.get(phone, 0) + 1
        sent = Outcome(Decision.SENT, None, message_id=f"m-{key}-{self.calls[phone]}")
        self.done.put((key, next(self.scripts.get(phone, iter(())), sent)))

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def ledger(run: Cli, tmp_path: Path, db_url: str) -> Iterator[Ledger]:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi", "--message-type", "TRANSACTIONAL")
    csv = write_csv(tmp_path / "r.csv", "phone\n+12065550001\n+12065550002\n")
    run("import", "c1", str(csv))
    yield Ledger(open_ledger_engine(db_url))


def _run(ledger: Ledger, caller: ScriptedCaller) -> SendStats:
    """One whole run of campaign c1 with `caller`."""
    sender = Sender(
        ledger, ledger.get_campaign("c1"), lambda: caller, SendOptions(mps=1000, concurrency=2)
    )
    sender.acquire()
    try:
        return sender.run()
    finally:
        sender.release()


def test_throttles_do_not_use_up_the_retries_for_service_errors(ledger: Ledger) -> None:
    # More throttles than the bound, then errors up to one short of it: all in one run.
    script = [THROTTLED] * (MAX_TRANSIENT_ATTEMPTS + 1) + [SERVER_ERROR] * (
        MAX_TRANSIENT_ATTEMPTS - 1
    )
    caller = ScriptedCaller({"+12065550001": list(script)})
    campaign = ledger.get_campaign("c1")
    stats = _run(ledger, caller)
    assert stats.gave_up == 0 and stats.sent == 2
    assert caller.calls["+12065550001"] == len(script) + 1
    assert ledger.state_counts(campaign.id).counts["sent"] == 2


def test_service_errors_alone_still_give_up_at_the_bound(ledger: Ledger) -> None:
    caller = ScriptedCaller({"+12065550001": [SERVER_ERROR] * MAX_TRANSIENT_ATTEMPTS})
    campaign = ledger.get_campaign("c1")
    stats = _run(ledger, caller)
    assert stats.gave_up == 1 and stats.sent == 1
    assert caller.calls["+12065550001"] == MAX_TRANSIENT_ATTEMPTS
    assert ledger.state_counts(campaign.id).counts["pending"] == 1


def test_progress_and_summary_show_the_share_throttled_and_the_verdict(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign.simulator.server import Simulator, SimulatorConfig

    run("create", "c2", "-o", "+12065550100", "-m", "Hi", "--message-type", "TRANSACTIONAL")
    lines = ["phone"] + [f"+1206555{i:04d}" for i in range(300)]
    run("import", "c2", str(write_csv(tmp_path / "c2.csv", "\n".join(lines) + "\n")))
    monkeypatch.setenv("CAMPAIGN_FORCE_PROGRESS", "1")
    with Simulator(SimulatorConfig(mps=1000, throttle_rate=0.1, seed=3)) as sim:
        err = run("--endpoint-url", sim.url, "send", "c2", "--yes", "--mps", "100").stderr
    assert run.json("status", "c2", "--json")["counts"]["sent"] == 300
    assert "throttled=" in err and "% (" in err.split("throttled=")[-1].split(",")[0]
    summary = next(line for line in err.splitlines() if line.startswith("Throttled "))
    assert " calls, lately " in summary and "%" in summary and "MPS" in summary


def test_one_recipient_reads_singular(run: Cli, tmp_path: Path, simulator: object) -> None:
    """Issue 13: "1 parts", "1 rows" never print."""
    run("create", "c3", "-o", "+12065550100", "-m", "Hi", "--message-type", "TRANSACTIONAL")
    run("import", "c3", str(write_csv(tmp_path / "c3.csv", "phone\n+12065550001\n")))
    url = simulator.url  # type: ignore[attr-defined]
    err = run("--endpoint-url", url, "send", "c3", "--yes", "--concurrency", "1").stderr
    assert "SEND: 1 recipient, 1 part from" in err and "1 call in flight at most" in err
    assert "Sent 1 (1 part), " in err and "; 0 throttles, 0 retries" in err
    wrote = run("report", "c3", "-o", str(tmp_path / "r.csv")).stderr
    assert "Wrote 1 row to" in wrote
