"""`campaign events ingest --file`: JSON Lines, Firehose output, gzip, folders; read twice, counted once."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from tests.events.conftest import Recipient, deliveries, event, make_campaign
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")
T = 1_700_000_000_000


def test_files_of_every_shape_then_the_same_again(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 6)
    folder = tmp_path / "firehose"
    (folder / "2026" / "11").mkdir(parents=True)
    # JSON Lines: the first three delivered, their TEXT_SUCCESSFUL after the final (out of order).
    (folder / "2026" / "11" / "a.jsonl").write_text(
        "".join(json.dumps(event(r, "TEXT_DELIVERED", T + 5)) + "\n" for r in rs[:3])
        + "".join(json.dumps(event(r, "TEXT_SUCCESSFUL", T, False)) + "\n" for r in rs[:3])
    )
    # Firehose, gzip, values back to back; one of them repeated, one undecodable line.
    with gzip.open(folder / "2026" / "11" / "b.gz", "wt") as fh:
        fh.write("".join(json.dumps(event(r, "TEXT_SPAM", T + 5)) for r in rs[3:5]))
        fh.write(json.dumps(event(rs[3], "TEXT_SPAM", T + 5)) + "\n{broken\n")
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(event(rs[5], "TEXT_SUCCESSFUL", T, False), indent=2))

    summary = run.json("events", "ingest", "--file", str(folder), "--file", str(loose), "--json")
    assert summary["files"] == 3
    assert (summary["read"], summary["stored"], summary["duplicates"]) == (11, 9, 1)
    assert summary["aside"] == {"malformed": 1}
    assert summary["campaigns"]["c1"] == {
        "sent": 6,
        "delivered": 3,
        "undelivered": 2,
        "awaiting": 1,
        "charged": pytest.approx(6 * (0.00581 + 0.00266)),
        "charged_recipients": 6,
    }
    rows = deliveries(isolated_env)
    assert [rows[r.id][2] for r in rs] == ["delivered"] * 3 + ["undelivered"] * 2 + [None]
    assert rows[rs[3].id][3] == "TEXT_SPAM: status TEXT_SPAM"

    again = run.json("events", "ingest", "--file", str(folder), "--file", str(loose), "--json")
    assert (again["read"], again["stored"], again["duplicates"], again["aside"]) == (11, 0, 11, {})
    assert deliveries(isolated_env) == rows


def test_summary_for_a_person(run: Cli, tmp_path: Path, isolated_env: Path) -> None:
    [r] = make_campaign(run, tmp_path, isolated_env, 1)
    path = tmp_path / "events.jsonl"
    path.write_text(
        json.dumps(event(r, "TEXT_DELIVERED", T)) + "\n" + json.dumps(event(r, "VOICE_X", T)) + "\n"
    )
    result = run("events", "ingest", "--file", str(path))
    assert result.stdout == ""  # messages go to stderr
    assert "Read 2 events (1 file)" in result.stderr
    assert "set aside: 1 (another channel (voice, RCS...) 1)" in result.stderr
    assert "Campaign 'c1': 1 sent -> 1 delivered, 0 undelivered, 0 awaiting" in result.stderr


def test_an_empty_folder_says_files_not_sqs_messages(run: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("events", "ingest", "--file", str(tmp_path / "empty"))
    assert "Read 0 events (0 files)" in result.stderr  # was "(0 SQS messages)"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "give either --queue-url or --file"),
        (("--queue-url", "http://127.0.0.1:1/q", "--file", "x"), 2, "does not exist"),
        (("--file", "missing.jsonl"), 2, "does not exist"),
    ],
)
def test_usage_errors(run: Cli, args: Any, code: int, message: str) -> None:
    result = run("events", "ingest", *args, code=code)
    assert message in result.stderr


def test_an_unreadable_queue_is_one_line(run: Cli) -> None:
    # Nothing listens there: one clear line, exit 1 (botocore's retries are short for a refusal).
    result = run("events", "ingest", "--queue-url", "http://127.0.0.1:9/000000000000/q", code=1)
    assert result.stderr.startswith("Error: cannot read queue http://127.0.0.1:9/000000000000/q")
    assert len(result.stderr.strip().splitlines()) == 1


def test_hostile_values_are_set_aside_not_in_the_way(
    run: Cli, tmp_path: Path, sqlite_or_postgres_url: str
) -> None:
    """Keys and ids the ledger's columns cannot hold stopped the whole ingest (an internal
    OverflowError on SQLite, `value too long` on PostgreSQL); the good event after them waited."""
    db = ("--db", sqlite_or_postgres_url)
    run(*db, "create", "c1", "-o", "+12065550100", "-m", "Hi", "--no-window")
    run(*db, "import", "c1", str(write_csv(tmp_path / "r.csv", "phone\n+12065550100\n")))
    good = event(Recipient(1, "+12065550100", "m-good", "c1"), "TEXT_DELIVERED", T)
    hostile = [
        {**good, "messageId": "x" * 500},
        {**good, "messageId": "m1", "eventType": "TEXT_" + "Y" * 500},
        {**good, "messageId": "m2", "eventTimestamp": 10**30},
        {**good, "messageId": "m3", "totalMessageParts": 10**20, "messageStatus": "Z" * 300},
        {**good, "messageId": "m4", "isoCountryCode": "USA", "totalMessagePrice": "NaN"},
        {**good, "messageId": "m5", "context": {"campaign": "c1", "recipient": "9" * 40}},
        {**good, "messageId": "m6", "context": {"campaign": "c1", "recipient": "²"}},
        {**good, "messageId": "y" * 300, "eventType": None},
        {**good, "messageId": "m7", "eventType": "VOICE_" + "V" * 300},
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in [*hostile, good]))
    summary = run.json(*db, "events", "ingest", "--file", str(path), "--json")
    assert summary["read"] == len(hostile) + 1
    # Too long a key (VOICE_ included), a timestamp past BIGINT; no eventType: missing fields;
    # recipient ids past INTEGER or not ASCII digits: no recipient of ours.
    assert summary["aside"] == {"malformed": 4, "missing_fields": 1, "unknown_message": 2}
    assert summary["stored"] == 3  # m3, m4 (their odd optional fields dropped) and the good one
