"""One liveness rule for every command (issue 13, item 6): `status` and `edit` see a sender as
`send` does - alive while its heartbeat is fresh and, on this host, while its process exists."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from campaign.domain import now
from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from tests.helpers import Cli

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold_lock(db_url: str, *, pid: int, host: str, age: timedelta = timedelta(0)) -> None:
    """Write the campaign's sender lock as a sender `pid` on `host` would have, `age` ago."""
    ledger = Ledger(open_ledger_engine(db_url))
    campaign = ledger.get_campaign("c1")
    ledger.acquire_sender(campaign.id, token="t", pid=pid, host=host, is_alive=lambda _: True)
    if age:
        ledger.update_campaign(campaign.id, sender_heartbeat=now() - age)


@pytest.fixture
def campaign(run: Cli) -> None:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi")


@pytest.mark.usefixtures("campaign")
def test_a_dead_sender_on_this_host_is_dead_at_once(run: Cli, db_url: str) -> None:
    hold_lock(db_url, pid=dead_pid(), host=socket.gethostname())  # heartbeat: just now
    status = run.json("status", "c1", "--json")
    assert status["sender"] is None and "rate_parts_per_second" not in status
    assert "Sending now" not in run("status", "c1").stdout
    run("edit", "c1", "--ttl", "600")  # not refused: nobody is sending


@pytest.mark.usefixtures("campaign")
def test_a_live_sender_on_this_host_is_alive(run: Cli, db_url: str) -> None:
    hold_lock(db_url, pid=os.getpid(), host=socket.gethostname())
    status = run.json("status", "c1", "--json")
    assert status["sender"]["pid"] == os.getpid()
    assert status["sender"]["host"] == socket.gethostname()
    # A live sender brings its rate (nothing sent in the last 10 s: no ETA).
    assert (status["rate_parts_per_second"], status["eta_seconds"]) == (0, None)
    text = run("status", "c1").stdout
    assert f"Sending now: pid {os.getpid()} on {socket.gethostname()}\n" in text
    assert "Last run" not in text
    result = run("edit", "c1", "--ttl", "600", code=1)
    assert "is being sent right now" in result.stderr


@pytest.mark.usefixtures("campaign")
def test_another_hosts_sender_is_judged_by_its_heartbeat(run: Cli, db_url: str) -> None:
    # Its pid means nothing here (this dead one could be alive there): only the heartbeat counts.
    hold_lock(db_url, pid=dead_pid(), host="elsewhere.example")
    assert run.json("status", "c1", "--json")["sender"]["host"] == "elsewhere.example"
    run("edit", "c1", "--ttl", "600", code=1)


@pytest.mark.usefixtures("campaign")
def test_a_silent_sender_is_dead_wherever_it_ran(run: Cli, db_url: str) -> None:
    hold_lock(db_url, pid=1, host="elsewhere.example", age=timedelta(minutes=2))
    assert run.json("status", "c1", "--json")["sender"] is None
    run("edit", "c1", "--ttl", "600")
