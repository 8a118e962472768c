"""Issue 13: the ledger fails while the sender is stopping (Sender.run's end: the last outcomes,
the run's end). The user gets one line saying what is wrong and which recipients stay `sending`;
the next send marks them `unknown`, and nobody is sent twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from campaign.ledger import Ledger
from campaign.ledger.engine import LedgerStorageError
from campaign.simulator.server import Simulator
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow

REFUSED = "cannot write the ledger x.db: the disk refused the write"


def _campaign(run: Cli, tmp_path: Path, n: int) -> None:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi", "--message-type", "TRANSACTIONAL")
    lines = ["phone"] + [f"+1206555{i:04d}" for i in range(n)]
    run("import", "c1", str(write_csv(tmp_path / "c1.csv", "\n".join(lines) + "\n")))


def _error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_outcomes_the_ledger_refuses_are_named_and_end_unknown(
    run: Cli, tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _campaign(run, tmp_path, 3)

    def refuse(self: Ledger, run_id: int, settlements: Any, **_owner: Any) -> None:
        if settlements:
            raise LedgerStorageError(REFUSED)

    send = ("--endpoint-url", simulator.url, "send", "c1", "--yes", "--concurrency", "3")
    with monkeypatch.context() as patched:
        # Claims commit (they carry no outcome yet); every outcome after them is refused, the
        # one the loop tries and the last one the run's end tries.
        patched.setattr(Ledger, "settle", refuse)
        line = _error_line(run(*send, code=1).stderr)
    # The outcomes a claim carried were committed with it; the others are named.
    named = re.fullmatch(
        rf"Error: {REFUSED}; (\d+) calls? that returned \((\d+) accepted by the service\) "
        r"could not be recorded: their (\d+) recipients? stay `sending`, and the next send marks "
        r"them `unknown` \(not re-sent unless --retry-unknown\); once fixed, run the same send "
        r"command again to resume: `(.*)` \(calls that were in flight .*",
        line,
    )
    assert named is not None, line
    *numbers, command = named.groups()
    assert command == f"campaign --endpoint-url {simulator.url} send c1 --concurrency 3 --yes"
    returned, accepted, left = (int(g) for g in numbers)
    assert 1 <= returned == accepted == left <= 3
    assert run.json("status", "c1", "--json")["counts"]["sending"] == left
    resumed = run(*send).stderr
    assert f"{left} recipient{'s were' if left > 1 else ' was'} mid-call" in resumed
    counts = run.json("status", "c1", "--json")["counts"]
    assert (counts["unknown"], counts["sent"]) == (left, 3 - left)
    assert len(simulator.accepted(dry_run=False)) == 3  # nobody twice


def test_only_the_end_of_the_run_refused(
    run: Cli, tmp_path: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _campaign(run, tmp_path, 2)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise LedgerStorageError(REFUSED)

    monkeypatch.setattr(Ledger, "end_run", refuse)
    line = _error_line(run("--endpoint-url", simulator.url, "send", "c1", "--yes", code=1).stderr)
    assert f"{REFUSED}; every outcome was recorded, only the end of the run was not" in line
    assert run.json("status", "c1", "--json")["counts"]["sent"] == 2
