"""Several senders, as the command line shows them (issue 9): SQLite refuses a second sender and
says how to run several; `status` lists the live and the lost senders; the liveness settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import update

from campaign.errors import UserError
from campaign.ledger import Ledger
from campaign.ledger.engine import db_now, open_ledger_engine
from campaign.ledger.tables import senders
from campaign.sending.plan import liveness_from_env
from tests.helpers import Cli, write_csv


def campaign(run: Cli, url: str) -> None:
    run("--db", url, "create", "c1", "-o", "+12065550100", "-m", "Hi", "--no-window")
    csv = write_csv(Path("c1.csv").resolve(), "phone\n(206) 555-0101\n")
    run("--db", url, "import", "c1", str(csv), "--default-region", "US")


@pytest.mark.usefixtures("start_from_migrated_ledger")
def test_a_second_sqlite_sender_refuses_and_names_postgresql(run: Cli, db_url: str) -> None:
    campaign(run, db_url)
    ledger = Ledger(open_ledger_engine(db_url))
    ledger.acquire_sender(
        ledger.get_campaign("c1").id,
        token="first",
        pid=os.getpid(),
        host=socket.gethostname(),
        is_alive=lambda _: True,
    )
    result = run(
        "--endpoint-url", "http://127.0.0.1:9", "send", "c1", "--yes", "--mps", "5", code=1
    )
    *notes, line = result.stderr.strip().splitlines()
    assert all(n.startswith("Note:") for n in notes)  # no traceback
    assert line.startswith("Error: campaign is already being sent by pid")
    assert "one sender per campaign" in line and "--db postgresql+psycopg://" in line
    assert ledger.state_counts(ledger.get_campaign("c1").id).counts["pending"] == 1


def test_status_lists_live_and_lost_senders(run: Cli, sqlite_or_postgres_url: str) -> None:
    url = sqlite_or_postgres_url
    campaign(run, url)
    engine = open_ledger_engine(url)
    ledger = Ledger(engine)
    campaign_id = ledger.get_campaign("c1").id
    live = ledger.register_sender(campaign_id, host="host-a", pid=101)
    gone = ledger.register_sender(campaign_id, host="host-b", pid=202)
    done = ledger.register_sender(campaign_id, host="host-c", pid=303)
    ledger.sender_heartbeat(live, rate=42.5, rate_note="42.5 MPS")
    ledger.stop_sender(done)
    with engine.begin() as conn:
        conn.execute(update(senders).where(senders.c.id == gone).values(heartbeat_at=db_now(40)))
    ledger.sweep_lost_senders(timeout=30, by=live)

    info = run.json("--db", url, "status", "c1", "--json")
    listed = [(s["id"], s["host"], s["pid"], s["state"]) for s in info["senders"]]
    assert listed == [(live, "host-a", 101, "live"), (gone, "host-b", 202, "lost")]
    first, second = info["senders"]
    assert (first["rate_parts_per_second"], first["rate_note"]) == (42.5, "42.5 MPS")
    assert first["silent_seconds"] < 30 and not first["silent_past_timeout"]
    assert second["lost_at"] is not None and second["silent_seconds"] >= 40
    text = run("--db", url, "status", "c1").stdout
    assert "Senders: 1 live sender, 1 lost" in text
    assert f"{live}  live  pid 101 on host-a: 42.5 parts/s (42.5 MPS), last heartbeat" in text
    assert f"{gone}  lost  pid 202 on host-b: declared lost at" in text
    engine.dispose()


def test_liveness_settings_from_the_environment() -> None:
    assert liveness_from_env({}) == (5.0, 30.0)
    assert liveness_from_env(
        {"CAMPAIGN_HEARTBEAT_SECONDS": "0.5", "CAMPAIGN_SENDER_TIMEOUT_SECONDS": "3"}
    ) == (0.5, 3.0)
    with pytest.raises(UserError, match="CAMPAIGN_HEARTBEAT_SECONDS must be a positive number"):
        liveness_from_env({"CAMPAIGN_HEARTBEAT_SECONDS": "soon"})
    with pytest.raises(UserError, match="at least 3 heartbeats"):
        liveness_from_env({"CAMPAIGN_SENDER_TIMEOUT_SECONDS": "10"})


@pytest.mark.usefixtures("start_from_migrated_ledger")
def test_a_bad_liveness_setting_is_one_line(
    run: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign(run, db_url)
    monkeypatch.setenv("CAMPAIGN_SENDER_TIMEOUT_SECONDS", "-1")
    result = run(
        "--endpoint-url", "http://127.0.0.1:9", "send", "c1", "--yes", "--mps", "5", code=1
    )
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: CAMPAIGN_SENDER_TIMEOUT_SECONDS must be a positive number of seconds, not '-1'"
    )
    assert "Traceback" not in result.stderr


def test_edit_refuses_while_a_sender_beats_on_a_shared_ledger(run: Cli, postgres_url: str) -> None:
    campaign(run, postgres_url)
    engine = open_ledger_engine(postgres_url)
    ledger = Ledger(engine)
    sender = ledger.register_sender(ledger.get_campaign("c1").id, host="host-a", pid=101)
    result = run("--db", postgres_url, "edit", "c1", "--ttl", "600", code=1)
    assert "is being sent right now (pid 101 on host-a)" in result.stderr
    ledger.stop_sender(sender)
    run("--db", postgres_url, "edit", "c1", "--ttl", "600")
    engine.dispose()
