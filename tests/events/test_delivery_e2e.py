"""Delivery events end to end, every part real: `events setup` against the simulator (configuration
set, event destination) and moto's server (SNS topic, SQS queue), `send` against the simulator, which
publishes its events to the topic, `events ingest` from moto's queue; a sender killed with SIGKILL
mid-send whose `unknown` recipients are reconciled by their events."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from campaign.simulator import Simulator, SimulatorConfig
from campaign.simulator.events import EventSettings
from tests.events.conftest import Moto
from tests.helpers import Cli, campaign_process, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SET = "tracked"


@pytest.fixture
def events_simulator(moto: Moto) -> Iterator[Simulator]:
    """A simulator whose events (a fifth undelivered, repeats, reordering) reach moto's SNS."""
    events = EventSettings(
        undelivered_share=0.2,
        duplicate_share=0.2,
        reorder_share=0.3,
        carrier_delay_s=0.05,
        handset_delay_s=0.2,
        price_per_part={"US": 0.00581},
    )
    config = SimulatorConfig(mps=1000, latency_ms=150, jitter_ms=100, events=events, seed=11)
    with Simulator(config) as sim:
        yield sim


def prepare(run: Cli, tmp_path: Path, sim: Simulator, n: int) -> str:
    """`events setup`, then a campaign of n recipients sent with its configuration set. moto's
    server lives for the whole session: each test gets a queue of its own (a simulator stopping
    after a test publishes what it still holds)."""
    queue_url = run(
        "--endpoint-url", sim.url, "events", "setup", "--configuration-set", SET,
        "--name", f"events-{uuid.uuid4().hex[:12]}",
    ).stdout.strip()  # fmt: skip
    lines = ["first_name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(n)]
    run(
        "create", "c1", "-o", "+12065550100", "-m", "Hi {first_name}, sale. STOP to end",
        "--no-window",  # promotional: sends at any hour of the day
    )  # fmt: skip
    run("edit", "c1", "--configuration-set", SET)
    run("import", "c1", str(write_csv(tmp_path / "r.csv", "\n".join(lines) + "\n")))
    return queue_url


def rows(db: Path) -> dict[str, tuple[Any, ...]]:
    """phone -> (state, message_id, delivery, charged)."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT phone, state, message_id, delivery, charged FROM recipients"
        ).fetchall()
    return {r[0]: r[1:] for r in found}


def ingest(run: Cli, queue_url: str) -> dict[str, Any]:
    result: dict[str, Any] = run.json(
        "events", "ingest", "--queue-url", queue_url, "--until-empty", "--json"
    )
    return result


def assert_every_accepted_message_has_its_delivery(sim: Simulator, db: Path) -> None:
    accepted = sim.accepted(dry_run=False)
    assert max(Counter(a["destination"] for a in accepted).values()) == 1  # nobody twice
    ledger = rows(db)
    for a in accepted:
        state, message_id, delivery, charged = ledger[a["destination"]]
        assert (state, message_id) == ("sent", a["message_id"]), a["destination"]
        assert delivery in ("delivered", "undelivered"), a["destination"]
        assert charged == pytest.approx(0.00581 + 0.00266)  # one part, price + carrier fee


def test_send_then_ingest_gives_every_accepted_message_its_delivery(
    run: Cli, tmp_path: Path, isolated_env: Path, moto: Moto, events_simulator: Simulator
) -> None:
    sim = events_simulator
    queue_url = prepare(run, tmp_path, sim, 60)
    run("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "200")
    assert sim.flush_events()
    summary = ingest(run, queue_url)
    assert summary["stored"] == 120  # two distinct events per message, whatever the repeats
    assert summary["aside"] == {}
    assert_every_accepted_message_has_its_delivery(sim, isolated_env)

    status = run.json("status", "c1", "--json")
    delivery = status["delivery"]
    assert sum(delivery.values()) == status["counts"]["sent"] == 60
    assert delivery["awaiting"] == 0 and 0 < delivery["undelivered"] < 30
    assert status["charged"] == pytest.approx(60 * (0.00581 + 0.00266))
    assert status["charged_recipients"] == 60
    reasons = status["undelivered_reasons"]
    assert sum(r["recipients"] for r in reasons) == delivery["undelivered"]
    assert all(r["reason"].startswith("TEXT_") for r in reasons)
    text = run("status", "c1").stdout
    assert f"60 sent -> {delivery['delivered']} delivered" in text
    assert "Charged (from events): $0.5082 for 60 recipients" in text


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def kill_mid_send(sim: Simulator, concurrency: int = 8) -> None:
    """Start a real `campaign send` and SIGKILL it once it has calls going."""
    before = len(sim.accepted())
    process = campaign_process(
        "--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "60",
        "--concurrency", str(concurrency),
    )  # fmt: skip
    wait_for(lambda: len(sim.accepted()) >= before + 10)
    process.kill()
    process.communicate(timeout=30)


@pytest.mark.parametrize("ingest_first", [False, True], ids=["resume-then-ingest", "ingest-first"])
def test_a_crash_campaign_s_unknown_recipients_are_reconciled_by_their_events(
    run: Cli,
    tmp_path: Path,
    isolated_env: Path,
    moto: Moto,
    events_simulator: Simulator,
    ingest_first: bool,
) -> None:
    sim = events_simulator
    queue_url = prepare(run, tmp_path, sim, 80)
    kill_mid_send(sim)
    # The calls in flight at the kill were mostly accepted (the simulator answers after its
    # latency): their recipients are left `sending`, and their events are on their way. A call
    # claimed but not yet written when the sender died was not: it must stay `unknown`.
    in_doubt = [p for p, r in rows(isolated_env).items() if r[0] == "sending"]
    if ingest_first:
        # The events arrive before any sender recovered the claims: recorded, delivery kept.
        assert sim.flush_events()
        ingest(run, queue_url)
        assert {rows(isolated_env)[p][0] for p in in_doubt} == {"sending"}
    resumed = run("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "200")
    n = len(in_doubt)
    assert f"{n} recipient{'s were' if n != 1 else ' was'} mid-call" in resumed.stderr
    assert run.json("status", "c1", "--json")["counts"]["unknown"] == len(in_doubt)

    assert sim.flush_events()
    summary = ingest(run, queue_url)
    # Unknown recipients are never re-sent: those the simulator accepted were accepted before
    # the kill.
    accepted = {a["destination"] for a in sim.accepted()}
    were_accepted = [p for p in in_doubt if p in accepted]
    assert were_accepted  # the point of the test: calls accepted, answers lost
    assert summary["reconciled"] == len(were_accepted)
    counts = run.json("status", "c1", "--json")["counts"]
    never = len(in_doubt) - len(were_accepted)
    assert (counts["unknown"], counts["sent"]) == (never, 80 - never)
    assert_every_accepted_message_has_its_delivery(sim, isolated_env)
