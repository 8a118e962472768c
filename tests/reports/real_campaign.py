"""A campaign built the way a user builds one, for the report's tests: the real CLI against the
simulator over HTTP, on SQLite or PostgreSQL, then the ledger's own figures read back with plain SQL.

`build_campaign` leaves every state the tool can produce: invalid and duplicate rows (import),
opted_out and failed (the simulator refuses those numbers), unknown (the simulator drops the
connection after accepting), sent, and possibly pending (a recipient throttled five times in a row
stays pending). Five countries, GSM-7 and UCS-2 messages. Three runs: the first with injected
throttles stopped by Ctrl-C (SIGINT to a real process), a pause, a second stopped at --limit with
every call dropped, the third to the end with throttles again. `ingest_events` then records
delivery events (as the simulator's event generator makes them) for some of the sent messages.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from campaign.ledger.engine import normalize_url
from campaign.simulator.events import EventSettings, plan_events
from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, campaign_process, write_csv

ORIGINATION = "+12065550100"
TEMPLATE = "Hi {first_name}, spring sale: 20% off everything until Sunday. Reply STOP to opt out"
OPTED_OUT = ("+12065550203", "+12065550217")
REJECTED = {
    "+33612345604": ("ValidationException", "DESTINATION_COUNTRY_BLOCKED"),
    "+4915123456702": ("ValidationException", "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"),
}
# JP has no price: the report must say so rather than count it as free.
PRICES = (
    "country,price_per_part,carrier_fee_per_part\n"
    "US,0.00581,0.00302\nFR,0.07380,0\nDE,0.08850,0\nGB,0.03650,0\n"
)
PRICE_PER_PART = {
    "US": Decimal("0.00883"),
    "FR": Decimal("0.07380"),
    "DE": Decimal("0.08850"),
    "GB": Decimal("0.03650"),
}


# 65 rows: 60 valid recipients in five countries (some names force UCS-2), 3 invalid rows,
# 2 repeated numbers.
RECIPIENT_ROWS: tuple[tuple[str, str], ...] = (
    *((f"Sam{i}", f"+1206555{200 + i:04d}") for i in range(30)),
    *(("Zoë" if i % 3 == 0 else f"Léa{i}", f"+336123456{i:02d}") for i in range(12)),
    *((f"Jörg{i}", f"+49151234567{i:02d}") for i in range(8)),
    *(("Siobhán" if i % 2 else f"Amy{i}", f"+4474001234{i:02d}") for i in range(6)),
    *((f"Yūki{i}", f"+8190123456{i:02d}") for i in range(4)),
    ("Bad", "12"),
    ("Worse", "not a number"),
    ("Short", "+1 206 555"),
    ("Again", "+12065550205"),
    ("Twice", "+33612345601"),
)


def recipients_csv(path: Path) -> Path:
    return write_csv(path, "first_name,phone\n" + "".join(f"{a},{b}\n" for a, b in RECIPIENT_ROWS))


def simulator_config(**changes: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {
        "mps": 1000,
        "opted_out": frozenset(OPTED_OUT),
        "reject_destinations": REJECTED,
        "throttle_rate": 0.15,
        "seed": 7,
    }
    return SimulatorConfig(**{**settings, **changes})


@dataclass(frozen=True)
class Built:
    name: str
    db_url: str
    prices: Path


def build_campaign(
    run: Cli, sim: Simulator, tmp_path: Path, db_url: str, name: str = "spring"
) -> Built:
    """The campaign of the module docstring, in the ledger at `db_url`."""
    db = ("--db", db_url)
    run(*db, "create", name, "-o", ORIGINATION, "-m", TEMPLATE, "--no-window")  # any hour
    run(
        *db,
        "import",
        name,
        str(recipients_csv(tmp_path / "customers.csv")),
        "--default-region",
        "US",
    )
    send = (*db, "--endpoint-url", sim.url, "send", name, "--yes")
    # Run 1: a real process, stopped by Ctrl-C once a few messages went out.
    first = campaign_process(*send, "--mps", "10")
    _wait_for(lambda: len(sim.accepted(dry_run=False)) >= 8)
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 3, err
    time.sleep(1.2)  # the pause the report must show
    # Run 2: every call dropped after the request went out (unknown), stopped at --limit.
    sim.set_faults(drop_rate=1.0, throttle_rate=0.0)
    run(*send, "--mps", "50", "--limit", "2")
    time.sleep(1.2)  # a pause between runs (a gap under a second is none)
    # Run 3: to the end, throttled again. A recipient throttled five times stays pending (exit 1).
    sim.set_faults(drop_rate=0.0, throttle_rate=0.15)
    run(*send, "--mps", "50", code=None)
    prices = write_csv(tmp_path / "prices.csv", PRICES)
    return Built(name, db_url, prices)


@dataclass(frozen=True)
class Snapshot:
    """A campaign built once on SQLite (`build_campaign`), for every test that only reads it or
    changes its own copy: the ledger file and what the simulator accepted."""

    ledger: Path
    accepted: tuple[dict[str, Any], ...]
    prices: Path
    name: str = "spring"

    def restore(self, db: Path) -> Built:
        """The campaign in the ledger file `db` (the test's own), replacing what is there."""
        with sqlite3.connect(self.ledger) as source, sqlite3.connect(db) as target:
            source.backup(target)  # consistent whatever the WAL holds
        return Built(self.name, f"sqlite:///{db}", self.prices)


def build_snapshot(run: Cli, folder: Path) -> Snapshot:
    """`build_campaign` on a SQLite ledger in `folder`, kept for `Snapshot.restore`."""
    db = folder / "ledger.db"
    with Simulator(simulator_config()) as sim:
        built = build_campaign(run, sim, folder, f"sqlite:///{db}")
        accepted = tuple(sim.accepted(dry_run=False))
    return Snapshot(db, accepted, built.prices, built.name)


def ingest_events(
    run: Cli, accepted: Sequence[dict[str, Any]], built: Built, tmp_path: Path
) -> Path:
    """Delivery events for two thirds of the sent messages (a third of those undelivered),
    written as JSON Lines and recorded by `campaign events ingest --file`. `accepted`: the
    simulator's accepted records (`Simulator.accepted(dry_run=False)`)."""
    sent = {
        mid
        for (mid,) in ledger_rows(built, "SELECT message_id FROM recipients WHERE state = 'sent'")
    }
    records = [r for r in accepted if r["message_id"] in sent]
    chosen = records[: len(records) * 2 // 3]
    settings = EventSettings(
        undelivered_share=0.35, price_per_part={"US": 0.00581, "*": 0.07}, carrier_fee_per_part=0.0
    )
    rng = random.Random(5)
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for n, record in enumerate(chosen):
            for planned in plan_events(record, settings, rng, 1_790_000_000_000 + 1000 * n):
                fh.write(json.dumps(planned.event) + "\n")
    run("--db", built.db_url, "events", "ingest", "--file", str(path))
    return path


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- the ledger's own figures -------------------------------------------------------------------


def ledger_rows(built: Built, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Plain SQL against the ledger, whatever the database (`:name` parameters)."""
    engine = create_engine(normalize_url(built.db_url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def _in_campaign(built: Built) -> str:
    return f"campaign_id = (SELECT id FROM campaigns WHERE name = '{built.name}')"


@dataclass(frozen=True)
class Truth:
    """What the ledger holds, each figure by its own simple query."""

    states: dict[str, int]
    delivery: dict[str, int]  # of sent recipients: delivered, undelivered, awaiting
    countries: dict[str, dict[str, Any]]  # valid recipients by country
    runs: list[tuple[int, float, int | None]]  # (id, mps, exit code)
    parts_by_run: dict[int, int]  # parts of accepted calls
    throttles_by_run: dict[int, int]
    failures: dict[tuple[str, str], int]  # (state, reason) -> recipients
    non_delivery: dict[str, int]  # delivery_reason -> recipients
    row_verdicts: dict[int, tuple[str, str | None, str | None]]  # row -> (state, reason, why not)
    sizes: dict[tuple[int, str], int]  # (parts, encoding) -> valid recipients
    ucs2: dict[str, int]  # character -> rows
    charged: float


def read_truth(built: Built) -> Truth:
    where = _in_campaign(built)
    rows = lambda sql: ledger_rows(built, sql)  # noqa: E731
    countries: dict[str, dict[str, Any]] = {}
    for country, n, parts, sent, sent_parts, delivered, charged, ucs2, reached in rows(
        "SELECT country, count(*), sum(parts), "
        "sum(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN state = 'sent' THEN parts ELSE 0 END), "
        "sum(CASE WHEN delivery = 'delivered' THEN 1 ELSE 0 END), sum(charged), "
        "sum(CASE WHEN encoding = 'UCS-2' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN state = 'sent' AND delivery_at IS NOT NULL THEN 1 ELSE 0 END) "
        f"FROM recipients WHERE {where} AND state NOT IN ('invalid', 'duplicate') GROUP BY country"
    ):
        countries[country] = {
            "recipients": n,
            "parts": int(parts),
            "sent": int(sent),
            "sent_parts": int(sent_parts),
            "delivered": int(delivered),
            "charged": charged,
            "ucs2": int(ucs2),
            "reached": int(reached),  # sent recipients a delivery event has reached
        }
    attempts = (
        "SELECT a.run_id, {what} FROM attempts a JOIN recipients r ON r.id = a.recipient_id "
        f"WHERE a.{where} AND a.outcome = '{{outcome}}' GROUP BY a.run_id"
    )
    return Truth(
        states=dict(rows(f"SELECT state, count(*) FROM recipients WHERE {where} GROUP BY state")),
        delivery=dict(
            rows(
                "SELECT coalesce(delivery, 'awaiting'), count(*) FROM recipients "
                f"WHERE {where} AND state = 'sent' GROUP BY coalesce(delivery, 'awaiting')"
            )
        ),
        countries=countries,
        runs=[
            (i, float(m), c)
            for i, m, c in rows(f"SELECT id, mps, exit_code FROM runs WHERE {where} ORDER BY id")
        ],
        parts_by_run={
            i: int(p) for i, p in rows(attempts.format(what="sum(r.parts)", outcome="sent"))
        },
        throttles_by_run={
            i: int(n) for i, n in rows(attempts.format(what="count(*)", outcome="throttled"))
        },
        failures={
            (s, why): n
            for s, why, n in rows(
                f"SELECT state, reason, count(*) FROM recipients WHERE {where} "
                "AND state NOT IN ('sent', 'pending', 'sending') GROUP BY state, reason"
            )
        },
        non_delivery=dict(
            rows(
                f"SELECT delivery_reason, count(*) FROM recipients WHERE {where} "
                "AND delivery = 'undelivered' GROUP BY delivery_reason"
            )
        ),
        row_verdicts={
            row: (s, why, dwhy)
            for row, s, why, dwhy in rows(
                f"SELECT row, state, reason, delivery_reason FROM recipients WHERE {where}"
            )
        },
        sizes={
            (int(p), e): n
            for p, e, n in rows(
                f"SELECT parts, encoding, count(*) FROM recipients WHERE {where} "
                "AND state NOT IN ('invalid', 'duplicate') GROUP BY parts, encoding"
            )
        },
        ucs2=Counter(
            {
                c: int(n)
                for c, n in rows(
                    f"SELECT character, sum(rows) FROM ucs2_characters WHERE {where} GROUP BY character"
                )
            }
        ),
        charged=float(
            rows(f"SELECT coalesce(sum(charged), 0) FROM recipients WHERE {where}")[0][0]
        ),
    )
