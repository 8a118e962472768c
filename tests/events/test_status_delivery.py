"""What `status` and `send --retry-unknown` say from delivery events: the funnel, the charged spend
beside the estimate, the top undelivered reasons, and which `unknown` recipients are safe to retry
(no event within TimeToLive + margin of their call) and which are not."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from campaign.simulator.server import Simulator
from tests.events.conftest import Recipient, event, make_campaign
from tests.helpers import SAMPLES, Cli, write_csv

T = 1_700_000_000_000
PRICE = 0.00581 + 0.00266  # what conftest.event charges per message


def ingest_events(run: Cli, tmp_path: Path, *events: dict[str, Any]) -> None:
    path = tmp_path / f"events-{len(list(tmp_path.glob('events-*')))}.jsonl"
    write_csv(path, "".join(json.dumps(e) + "\n" for e in events))
    run("events", "ingest", "--file", str(path))


def test_status_shows_the_funnel_charges_and_reasons(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 5)
    run("edit", "c1", "--configuration-set", "marketing")
    before = run.json("status", "c1", "--json")
    assert before["delivery"] == {"delivered": 0, "undelivered": 0, "awaiting": 5}
    assert (before["charged"], before["charged_recipients"]) == (0, 0)
    assert "no event recorded yet" in run("status", "c1").stdout

    ingest_events(
        run,
        tmp_path,
        event(rs[0], "TEXT_DELIVERED", T),
        event(rs[1], "TEXT_DELIVERED", T),
        event(rs[2], "TEXT_BLOCKED", T, messageStatusDescription="Blocked by the carrier"),
        event(rs[3], "TEXT_SPAM", T, messageStatusDescription="Filtered as spam"),
        event(rs[4], "TEXT_BLOCKED", T + 1, messageStatusDescription="Blocked by the carrier"),
    )
    info = run.json("status", "c1", "--json", "--prices", str(SAMPLES / "prices.csv"))
    assert info["delivery"] == {"delivered": 2, "undelivered": 3, "awaiting": 0}
    assert info["charged"] == round(5 * PRICE, 6)
    assert info["charged_recipients"] == 5
    assert info["undelivered_reasons"] == [
        {"reason": "TEXT_BLOCKED: Blocked by the carrier", "recipients": 2},
        {"reason": "TEXT_SPAM: Filtered as spam", "recipients": 1},
    ]
    assert info["unknown_outcomes"]["probably_never_accepted"] == 0
    text = run("status", "c1", "--prices", str(SAMPLES / "prices.csv")).stdout
    assert (
        "Delivery (from events): 5 sent -> 2 delivered (40.0%), 3 undelivered, 0 awaiting" in text
    )
    estimated = info["spend"]["sent"]
    assert f"Charged (from events): ${5 * PRICE:,.4f} for 5 recipients; estimated " in text
    assert f"${estimated:,.4f} for all 5 sent" in text
    assert "  undelivered        2  TEXT_BLOCKED: Blocked by the carrier" in text


def test_status_says_a_campaign_without_configuration_set_gets_no_events(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    make_campaign(run, tmp_path, isolated_env, 2)
    text = run("status", "c1").stdout
    assert "Delivery: unknown. The campaign has no configuration set" in text
    created = run("create", "c2", "-o", "+12065550100", "-m", "Hi")
    assert "No --configuration-set: AWS will send no delivery events for it" in created.stderr
    quiet = run("create", "c3", "-o", "+12065550100", "-m", "Hi", "--configuration-set", "x")
    assert "configuration-set" not in quiet.stderr


def age_attempts(db: Path, hours_ago: dict[int, float]) -> None:
    """One attempt per recipient, made that many hours ago (as a sender that died would leave)."""
    now = datetime.now(UTC)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO runs (id, campaign_id, pid, host, dry_run, mps, concurrency, started_at) "
            "VALUES (1, 1, 1, 'h', 0, 10, 1, ?)",
            ((now - timedelta(hours=100)).strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
        for rid, hours in hours_ago.items():
            conn.execute(
                "INSERT INTO attempts (recipient_id, campaign_id, run_id, dry_run, started_at, "
                "outcome) VALUES (?, 1, 1, 0, ?, 'unknown')",
                (rid, (now - timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S.%f")),
            )


def unknown_campaign(
    run: Cli, tmp_path: Path, db: Path, recent_hours: float = 1
) -> list[Recipient]:
    """Four `unknown` recipients: two called 80 h ago, one `recent_hours` ago, one accepted after
    all (its event arrives: it becomes `sent`, and shows that this campaign's events reach the
    ledger)."""
    rs = make_campaign(run, tmp_path, db, 4, state="unknown")
    age_attempts(db, {rs[0].id: 80, rs[1].id: recent_hours, rs[2].id: 80, rs[3].id: 80})
    return rs


def retry(run: Cli, sim: Simulator) -> str:
    result = run("--endpoint-url", sim.url, "send", "c1", "--retry-unknown", "--yes")
    return str(result.stderr)


def test_retry_unknown_says_which_are_safe_and_which_are_not(
    run: Cli, tmp_path: Path, isolated_env: Path, simulator: Simulator
) -> None:
    rs = unknown_campaign(run, tmp_path, isolated_env)
    run("edit", "c1", "--configuration-set", "default")
    ingest_events(run, tmp_path, event(rs[3], "TEXT_DELIVERED", T, message_id="late"))
    info = run.json("status", "c1", "--json")
    assert info["counts"]["unknown"] == 3
    assert info["unknown_outcomes"] == {
        "probably_never_accepted": 2,
        "may_still_be_accepted": 1,
        "after_hours": 73.0,
        "why_none_safe": None,
    }
    assert (
        "Unknown outcome: 2 of 3 very probably never accepted (no event within 73 h of their "
        "call): safe to retry with `send --retry-unknown`; 1 may still have been accepted."
    ) in run("status", "c1").stdout

    said = retry(run, simulator)
    assert "safe to retry: 2 (no event within 73 h of their call: very probably never " in said
    assert f"{rs[0].phone}, {rs[2].phone}" in said
    assert "NOT safe: 1 (called less than 73 h ago, or accepted" in said
    assert said.split("NOT safe: 1", 1)[1].split("\n", 1)[0].endswith(rs[1].phone)
    assert {a["destination"] for a in simulator.accepted()} == {
        rs[0].phone,
        rs[1].phone,
        rs[2].phone,
    }


def test_retry_unknown_without_events_calls_none_safe(
    run: Cli, tmp_path: Path, isolated_env: Path, simulator: Simulator
) -> None:
    unknown_campaign(run, tmp_path, isolated_env)
    said = retry(run, simulator)  # no configuration set: no event could ever tell
    assert (
        "None of them can be shown safe to retry: the campaign has no configuration set, so AWS "
        "sends no delivery events for it." in said
    )
    assert "Note: no configuration set, so AWS sends no delivery events" in said


def test_a_short_ttl_makes_recent_calls_safe_once_events_flow(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    rs = unknown_campaign(run, tmp_path, isolated_env, recent_hours=2)
    run("edit", "c1", "--configuration-set", "default", "--ttl", "60")
    info = run.json("status", "c1", "--json")["unknown_outcomes"]
    assert info["why_none_safe"].startswith("no delivery event of this campaign is recorded yet")
    assert info["may_still_be_accepted"] == 4
    ingest_events(run, tmp_path, event(rs[3], "TEXT_DELIVERED", T, message_id="late"))
    info = run.json("status", "c1", "--json")["unknown_outcomes"]
    # TTL 60 s + 1 h margin: the call two hours ago is past it too.
    assert (info["probably_never_accepted"], info["may_still_be_accepted"]) == (3, 0)
    assert info["after_hours"] == round((60 + 3600) / 3600, 2)
