"""Every command on a PostgreSQL ledger as on SQLite: a whole campaign through the real CLI (create,
db upgrade, list, import, estimate, edit, suppress, send --dry-run, send, status, events ingest,
report in every form) against the simulator, once per dialect; what import's COPY writes; chunked
statements at sizes past one chunk (and, marked slow, a 100,000-row import against a
100,000-number do-not-send list); the one-line errors of a PostgreSQL URL.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from campaign.ledger import Ledger, imports
from campaign.ledger.engine import open_ledger_engine
from campaign.ledger.suppressions import AWS_OPT_OUT_SOURCE
from campaign.ledger.tables import SCHEMA_REVISION
from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import SAMPLES, Cli, campaign_process, write_csv
from tests.postgres import PostgresCluster

ORIGIN = "+12065550100"
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(
        mps=1000, seed=7, log_path=tmp_path / "sim.jsonl", events_file=tmp_path / "events.jsonl"
    )
    with Simulator(config) as simulator:
        yield simulator


def rows_of(report: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(report)))


def test_a_whole_campaign(run: Cli, sim: Simulator, tmp_path: Path, db_url: str) -> None:
    out = run("db", "upgrade")
    assert f"Ledger at revision {SCHEMA_REVISION}" in out.stdout + out.stderr
    run("create", "spring", "-o", ORIGIN, "-m", "Hi {first_name|there}, sale today", "--no-window")
    # On the list before the import: the import marks this pending number `suppressed`.
    run("suppress", "add", "+14155550123", "--reason", "complaint")
    imported = run(
        "import", "spring", str(SAMPLES / "recipients.csv"), "--default-region", "US",
        "--country-column", "country",
    )  # fmt: skip
    assert "19 ready, 3 duplicate, 7 invalid" in imported.stderr
    [listed] = run.json("list", "--json")
    assert (listed["campaign"], listed["recipients"]) == ("spring", 30)

    estimate = run.json("estimate", "spring", "--prices", str(SAMPLES / "prices.csv"), "--json")
    assert estimate["total"]["recipients"] == 19
    edited = run("edit", "spring", "--message", "Hello {first_name|you}, sale today")
    assert "Recounted 19 pending recipients" in edited.stdout + edited.stderr

    dry = run("--endpoint-url", sim.url, "send", "spring", "--dry-run", "--sample", "4")
    assert "Nobody was sent anything" in dry.stdout + dry.stderr
    assert run.json("status", "spring", "--json")["counts"]["pending"] == 19

    run("--endpoint-url", sim.url, "send", "spring", "--yes")
    status = run.json("status", "spring", "--json")
    assert status["counts"]["pending"] == 0
    assert status["counts"]["sent"] == 19 and status["counts"]["suppressed"] == 1
    assert status["last_run"]["exit_code"] == 0 and not status["last_run"]["crashed"]
    # Each sent recipient was accepted exactly once, with the edited message.
    accepted = sim.accepted(dry_run=False)
    assert Counter(Counter(r["destination"] for r in accepted).values()) == Counter({1: 19})
    assert all(r["body"].startswith("Hello ") for r in accepted)
    report = rows_of(run("report", "spring").stdout)
    assert {r["phone"] for r in report if r["state"] == "sent"} == {
        r["destination"] for r in accepted
    }
    assert {r["message_id"] for r in report if r["state"] == "sent"} == {
        r["message_id"] for r in accepted
    }
    again = run("--endpoint-url", sim.url, "send", "spring", "--yes")
    assert len(sim.accepted(dry_run=False)) == 19, again.stderr

    # Delivery events from a file: every sent recipient gets its delivery.
    assert sim.flush_events()
    events = tmp_path / "events.jsonl"
    _wait_for(lambda: events.exists() and len(events.read_text().splitlines()) >= 19)
    ingested = run.json("events", "ingest", "--file", str(events), "--json")
    assert ingested["stored"] >= 19
    delivery = run.json("status", "spring", "--json")["delivery"]
    assert delivery["delivered"] + delivery["undelivered"] == 19 and delivery["awaiting"] == 0
    report = rows_of(run("report", "spring").stdout)
    assert sum(1 for r in report if r["delivery"]) == 19
    assert all(r["sent_at"].endswith("Z") for r in report if r["state"] == "sent")

    # The report in its other forms.
    excel = tmp_path / "crm.csv"
    run("report", "spring", "--excel", "--include", "all", "-o", str(excel))
    raw = excel.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    crm = rows_of(raw.decode("utf-8-sig"))
    assert len(crm) == 30 and crm[0]["first_name"] == "Ava" and crm[0]["city"] == "Seattle"
    assert crm[0]["phone"] == '="+12065550100"'
    page = tmp_path / "spring.html"
    run("report", "spring", "--html", str(page), "--prices", str(SAMPLES / "prices.csv"))
    assert "spring" in page.read_text("utf-8")

    listed_numbers = run.json("suppress", "list", "--json")
    assert [e["phone"] for e in listed_numbers] == ["+14155550123"]
    run("suppress", "remove", "+14155550123")
    assert run.json("suppress", "list", "--json") == []


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# Cells that COPY's text form must escape (tab, newline, backslash, its end marker `\.`), that the
# cells column's own encoding uses (U+001F), quotes, and characters outside the BMP.
AWKWARD = [
    ("tab\there", "line\nbreak"),
    ("back\\slash \\N", "end of data\n\\.\n"),
    ("quote \" and '", "unit\x1fseparator"),
    ("Zoë 🎉 日本", "\\."),
    ("", "trailing space "),
]


def test_every_cell_comes_back_as_imported(run: Cli, tmp_path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["phone", "first_name", "note"])
    for i, (name, note) in enumerate(AWKWARD):
        writer.writerow([f"+1206555{i:04d}", name, note])
    path = write_csv(tmp_path / "awkward.csv", buffer.getvalue())
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name|there}", "--no-window")
    run("import", "c", str(path))
    report = rows_of(run("report", "c", "--include", "first_name,note").stdout)
    assert [(r["first_name"], r["original:note"]) for r in report] == [
        (name, note) for name, note in AWKWARD
    ]


def test_a_list_longer_than_one_statement(run: Cli, tmp_path: Path, db_url: str) -> None:
    # Numbers go in 500 to a statement: 1,234 across three statements, 300 of them already listed.
    numbers = [f"+1206555{i:04d}" for i in range(1_234)]
    first = write_csv(tmp_path / "first.csv", "phone\n" + "\n".join(numbers[500:800]) + "\n")
    run("suppress", "add", str(first))
    every = write_csv(tmp_path / "every.csv", "phone\n" + "\n".join(numbers) + "\n")
    added = run("suppress", "add", str(every)).stderr
    assert "Added 934 numbers to the do-not-send list; 300 already on it" in added
    ledger = Ledger(open_ledger_engine(db_url))
    assert ledger.count_suppressions() == 1_234
    # A sync adds and removes only its own source's entries, in chunks too.
    source = AWS_OPT_OUT_SOURCE + "Default"
    synced = [f"+1312555{i:04d}" for i in range(1_100)]
    change = ledger.sync_suppressions(source, [*synced, *numbers[:10]], "opted out")
    assert (change.added, change.already, change.removed) == (1_100, 10, 0)
    change = ledger.sync_suppressions(source, synced[:100], "opted out")
    assert (change.added, change.already, change.removed) == (0, 100, 1_000)
    assert ledger.remove_suppressions(numbers[:1_100]).removed == 1_100
    assert ledger.count_suppressions() == 134 + 100


@pytest.mark.slow
def test_100k_rows_against_a_100k_number_list(run: Cli, tmp_path: Path, db_url: str) -> None:
    """Past every driver's parameter limit (SQLite 32,766, PostgreSQL 65,535) in both places
    where user-sized input reaches SQL: the import's rows and the do-not-send list."""
    areas = ["206", "312", "415", "303", "512", "720", "617", "212", "305", "404"]
    numbers = [f"+1{areas[i // 10_000]}555{i % 10_000:04d}" for i in range(100_000)]
    listed = numbers[::2]  # half of them, plus 50,000 the campaign does not have
    others = [f"+1{areas[i // 10_000]}556{i % 10_000:04d}" for i in range(50_000)]
    listing = write_csv(tmp_path / "dnc.csv", "phone\n" + "\n".join(listed + others) + "\n")
    added = run("suppress", "add", str(listing), "--reason", "complaint")
    assert "Added 100,000 numbers" in added.stdout + added.stderr

    rows = "\n".join(f"Sam{i},{n}" for i, n in enumerate(numbers))
    recipients = write_csv(tmp_path / "big.csv", "first_name,phone\n" + rows + "\n")
    run("create", "big", "-o", ORIGIN, "-m", "Hi {first_name}, sale today", "--no-window")
    run("import", "big", str(recipients), "--default-region", "US")
    counts = run.json("status", "big", "--json")["counts"]
    assert (counts["pending"], counts["suppressed"]) == (50_000, 50_000)
    report = rows_of(run("report", "big").stdout)
    assert len(report) == 100_000
    assert {r["phone"] for r in report if r["state"] == "suppressed"} == set(listed)

    ledger = Ledger(open_ledger_engine(db_url))
    source = AWS_OPT_OUT_SOURCE + "Default"
    synced = [f"+1{areas[i // 10_000]}557{i % 10_000:04d}" for i in range(100_000)]
    assert ledger.sync_suppressions(source, synced, "opted out").added == 100_000
    assert ledger.sync_suppressions(source, [], "opted out").removed == 100_000
    assert ledger.remove_suppressions(listed + others).removed == 100_000
    assert ledger.count_suppressions() == 0


# -- PostgreSQL only --------------------------------------------------------------------------------


@pytest.fixture
def pg_only(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    return db_url


def test_sessions_plan_each_statement_for_its_parameters(pg_only: str) -> None:
    # A generic plan for `phone IN ($1..$500)` over a table filling in the same transaction
    # scanned it whole, unhashed, per chunk: 215 s for a 100,000-number `suppress add`.
    engine = open_ledger_engine(pg_only)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"


def test_import_writes_by_copy_on_postgresql(
    run: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied: list[int] = []
    real = imports._copy_recipients

    def spy(conn: Any, columns: Any, rows: Any) -> None:
        copied.append(len(rows))
        real(conn, columns, rows)

    monkeypatch.setattr(imports, "_copy_recipients", spy)
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name|there}", "--no-window")
    run("import", "c", str(SAMPLES / "recipients.csv"), "--default-region", "US")
    assert copied == ([30] if db_url.startswith("postgresql") else [])
    assert run.json("status", "c", "--json")["recipients"] == 30


def test_missing_driver_is_one_line(run: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if db_url.startswith("postgresql"):
        pytest.skip("once is enough (and the test server's teardown needs psycopg)")
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    result = run("--db", "postgresql://campaign:secret@127.0.0.1:5/ledger", "list", code=1)
    assert result.stderr.strip() == (
        "Error: cannot use database URL postgresql+psycopg://campaign:***@127.0.0.1:5/ledger: "
        "its driver psycopg is not installed (pip install 'psycopg[binary]')"
    )


def test_copies_started_at_once_on_a_new_database_all_start(
    pg_only: str, blank_postgres_url: str
) -> None:
    # N identical tasks against a database nobody has used yet: each would create the schema.
    processes = [campaign_process("--db", blank_postgres_url, "list", "--json") for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    assert [(code, json.loads(out)) for code, out, _ in results] == [(0, [])] * 4, results
    engine = open_ledger_engine(blank_postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_REVISION
        )


def test_a_role_that_may_not_create_tables(
    run: Cli, pg_only: str, blank_postgres_url: str, postgres_cluster: PostgresCluster
) -> None:
    """README: the owner creates the schema once; a role with row rights only runs the rest."""
    role = f"sender_{uuid.uuid4().hex[:8]}"
    postgres_cluster.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'secret-pw'")
    narrow = blank_postgres_url.replace("postgres@", f"{role}:secret-pw@")
    refused = run("--db", narrow, "list", code=1).stderr.strip()
    assert refused.startswith(f"Error: cannot upgrade the ledger postgresql+psycopg://{role}:***@")
    assert refused.endswith(
        "permission denied for schema public (creating or upgrading the schema needs a role that "
        "may create tables there, e.g. the database's owner: run `campaign --db OWNER_URL db "
        "upgrade` once)"
    )
    assert "\n" not in refused and "secret-pw" not in refused and "CREATE TABLE" not in refused

    run("--db", blank_postgres_url, "db", "upgrade")
    engine = open_ledger_engine(blank_postgres_url)
    with engine.begin() as conn:
        conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        )
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"))
    engine.dispose()
    run("--db", narrow, "create", "c", "-o", ORIGIN, "-m", "Hi {first_name|there}")
    run("--db", narrow, "import", "c", str(SAMPLES / "recipients.csv"), "--default-region", "US")
    run("--db", narrow, "suppress", "add", "+12065550142")
    assert run.json("--db", narrow, "status", "c", "--json")["recipients"] == 30


def test_events_with_nul_characters_are_recorded(run: Cli, tmp_path: Path, db_url: str) -> None:
    # PostgreSQL's text cannot hold NUL: one "\u0000" in an event once failed the whole batch.
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--no-window")
    run("import", "c", str(write_csv(tmp_path / "r.csv", "phone\n+12065550100\n")))
    engine = open_ledger_engine(db_url)
    with engine.begin() as conn:
        rid = conn.execute(text("SELECT id FROM recipients")).scalar_one()
        conn.execute(text("UPDATE recipients SET state = 'sent', message_id = 'm-1', attempts = 1"))
    engine.dispose()
    event = {
        "eventType": "TEXT_BLOCKED", "eventVersion": "1.0", "eventTimestamp": 1_790_000_000_000,
        "isFinal": True, "originationPhoneNumber": ORIGIN, "destinationPhoneNumber": "+12065550100",
        "messageId": "m-1", "messageType": "PROMOTIONAL", "messageStatus": "BLOCKED",
        "messageStatusDescription": "blocked\u0000by carrier",
        "context": {"campaign": "c", "recipient": str(rid)}, "totalMessageParts": 1,
    }  # fmt: skip
    stray = {**event, "messageId": "m-2", "context": {"campaign": "c\u0000x", "recipient": "1"}}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(event) + "\n" + json.dumps(stray) + "\n")
    summary = run.json("events", "ingest", "--file", str(path), "--json")
    assert (summary["stored"], sum(summary["aside"].values())) == (1, 1)
    [row] = rows_of(run("report", "c").stdout)
    assert row["delivery"] == "undelivered"
    assert row["delivery_reason"].startswith("TEXT_BLOCKED: blocked")
    assert row["delivery_reason"].endswith("by carrier")
