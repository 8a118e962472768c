"""Several `campaign send` processes on one PostgreSQL ledger against the simulator (issue 9): they
share a campaign without sending anyone twice, survive one of them being killed or stopped, and
share one origination identity's MPS. Liveness is shortened by environment variables so that a
silent sender is declared lost in seconds."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from campaign.ledger.engine import make_engine
from campaign.ledger.tables import rate_limits, recipients, senders
from campaign.simulator.server import Simulator, SimulatorConfig
from tests.e2e.test_send import recipients_csv
from tests.helpers import Cli, campaign_process

pytestmark = pytest.mark.slow

HEARTBEAT, TIMEOUT = 0.5, 3.0
LIVENESS = {
    "CAMPAIGN_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "CAMPAIGN_SENDER_TIMEOUT_SECONDS": str(TIMEOUT),
    "CAMPAIGN_DEBUG": "1",  # a traceback if anything goes wrong
}


@pytest.fixture
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Simulator]:
    mps, latency = getattr(request, "param", (300.0, 50.0))
    simulator = Simulator(
        SimulatorConfig(mps=mps, latency_ms=latency, log_path=tmp_path / "sim.jsonl", seed=3)
    ).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def make_campaign(run: Cli, url: str, tmp_path: Path, name: str, n: int, start: int = 0) -> None:
    run("--db", url, "create", name, "-o", "+12065550100", "-m", "Hi {first_name}", "--no-window")
    csv = recipients_csv(tmp_path / f"{name}.csv", n, start=start)
    run("--db", url, "import", name, str(csv), "--default-region", "US")


def senders_of(url: str, sim: Simulator, name: str, n: int, *args: str) -> list[Any]:
    return [
        campaign_process(
            "-q", "--db", url, "--endpoint-url", sim.url, "send", name, "--yes", *args, env=LIVENESS
        )
        for _ in range(n)
    ]


def finish(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[tuple[int, str]]:
    out = []
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        out.append((proc.returncode, err))
    return out


def counts(engine: Engine, campaign: str | None = None) -> Counter[str]:
    with engine.connect() as conn:
        sql = "SELECT r.state, count(*) FROM recipients r JOIN campaigns c ON c.id = r.campaign_id"
        if campaign:
            sql += f" WHERE c.name = '{campaign}'"
        rows = conn.execute(text(sql + " GROUP BY r.state")).all()
    return Counter({str(r[0]): int(r[1]) for r in rows})


def sender_id_of(engine: Engine, pid: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(senders.c.id).where(senders.c.pid == pid)).scalar_one())


def rows_of(engine: Engine, sender_id: int) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(recipients.c.id, recipients.c.state).where(recipients.c.sender_id == sender_id)
        ).all()
    return {r.id: r.state for r in rows}


def wait_for(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def accepted_once(sim: Simulator) -> list[str]:
    """The recipients the simulator accepted, each checked to be there once."""
    ids = [a["context"]["recipient"] for a in sim.accepted(dry_run=False)]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert twice == [], f"sent twice: {twice[:10]}"
    return ids


def test_three_senders_share_a_campaign_and_send_nobody_twice(
    run: Cli, postgres_url: str, engine: Engine, sim: Simulator, tmp_path: Path
) -> None:
    make_campaign(run, postgres_url, tmp_path, "c1", 1500)
    results = finish(senders_of(postgres_url, sim, "c1", 3, "--mps", "300"))
    assert [code for code, _ in results] == [0, 0, 0], results
    assert counts(engine) == {"sent": 1500}
    assert len(accepted_once(sim)) == 1500
    with engine.connect() as conn:
        per_sender = {
            r[0]: r[1]
            for r in conn.execute(text("SELECT sender_id, count(*) FROM recipients GROUP BY 1"))
        }
        states = set(conn.execute(select(senders.c.state)).scalars())
    assert len(per_sender) == 3, per_sender  # each of them sent a share
    assert states == {"stopped"}
    status = run.json("--db", postgres_url, "status", "c1", "--json")
    assert status["counts"]["sent"] == 1500 and status["senders"] == []


@pytest.mark.parametrize("sim", [(150.0, 300.0)], indirect=True)
def test_a_killed_sender_loses_its_claims_and_the_others_finish(
    run: Cli, postgres_url: str, engine: Engine, sim: Simulator, tmp_path: Path
) -> None:
    make_campaign(run, postgres_url, tmp_path, "c1", 900)
    procs = senders_of(postgres_url, sim, "c1", 3, "--mps", "150")
    victim = procs[0]
    wait_for(lambda: counts(engine)["sent"] >= 150)
    victim_id = sender_id_of(engine, victim.pid)
    victim.kill()
    victim.wait()
    in_flight = [i for i, s in rows_of(engine, victim_id).items() if s == "sending"]
    results = finish(procs[1:])
    assert [code for code, _ in results] == [0, 0], results
    # Its calls in flight became `unknown` (the others waited for it to be declared lost), and
    # nothing else did; everyone else was sent, once.
    final = counts(engine)
    assert final["pending"] == 0 and final["sending"] == 0
    assert final["sent"] + final["unknown"] == 900
    assert {i: s for i, s in rows_of(engine, victim_id).items() if i in in_flight} == dict.fromkeys(
        in_flight, "unknown"
    )
    assert final["unknown"] == len(in_flight)
    accepted = set(accepted_once(sim))
    with engine.connect() as conn:
        sent_ids = set(
            conn.execute(select(recipients.c.id).where(recipients.c.state == "sent")).scalars()
        )
    assert {str(i) for i in sent_ids} <= accepted  # guarantee 2: accepted ones are sent/unknown
    assert len(accepted - {str(i) for i in sent_ids}) <= len(in_flight)
    status = run.json("--db", postgres_url, "status", "c1", "--json")
    assert [(s["pid"], s["state"]) for s in status["senders"]] == [(victim.pid, "lost")]


@pytest.mark.parametrize("sim", [(100.0, 300.0)], indirect=True)
def test_a_stopped_sender_is_declared_lost_and_writes_nothing_when_it_wakes(
    run: Cli, postgres_url: str, engine: Engine, sim: Simulator, tmp_path: Path
) -> None:
    make_campaign(run, postgres_url, tmp_path, "c1", 700)
    sleeper, other = senders_of(postgres_url, sim, "c1", 2, "--mps", "100")
    wait_for(lambda: counts(engine)["sent"] >= 100)
    sleeper_id = sender_id_of(engine, sleeper.pid)
    sleeper.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: "sending" not in rows_of(engine, sleeper_id).values())
        with engine.connect() as conn:
            state = conn.execute(
                select(senders.c.state).where(senders.c.id == sleeper_id)
            ).scalar_one()
        assert state == "lost"
        before = rows_of(engine, sleeper_id)
        unknown = {i for i, s in before.items() if s == "unknown"}
    finally:
        sleeper.send_signal(signal.SIGCONT)
    (code, err), (other_code, other_err) = finish([sleeper, other])
    assert code == 1, err
    assert "declared lost by another sender" in err and "Traceback" not in err
    assert other_code == 0, other_err
    # After waking it claimed nothing, and its late outcomes overwrote nothing.
    assert rows_of(engine, sleeper_id) == before
    assert unknown  # it had calls in flight when it was stopped
    final = counts(engine)
    assert final["pending"] == 0 and final["sending"] == 0
    assert final["sent"] + final["unknown"] == 700 and final["unknown"] == len(unknown)
    accepted_once(sim)


@pytest.mark.parametrize("sim", [(50.0, 50.0)], indirect=True)
def test_two_campaigns_on_one_identity_share_its_mps(
    run: Cli, postgres_url: str, engine: Engine, sim: Simulator, tmp_path: Path
) -> None:
    """Each sender alone may send 50 parts/s and so may the identity: together they keep to 50.
    Unshared, they would ask for 100 and half their calls would be throttled."""
    make_campaign(run, postgres_url, tmp_path, "c1", 150)
    make_campaign(run, postgres_url, tmp_path, "c2", 150, start=5000)
    procs = [
        *senders_of(postgres_url, sim, "c1", 1, "--mps", "50"),
        *senders_of(postgres_url, sim, "c2", 1, "--mps", "50"),
    ]
    assert [code for code, _ in finish(procs)] == [0, 0]
    assert counts(engine) == {"sent": 300}
    assert len(accepted_once(sim)) == 300
    stats = sim.stats()
    assert stats.throttled <= 0.05 * stats.accepted, stats
    with engine.connect() as conn:
        row = conn.execute(select(rate_limits.c.identity, rate_limits.c.mps)).one()
    assert tuple(row) == ("+12065550100", 50.0)


def test_a_dry_run_on_postgresql_calls_each_recipient_once(
    run: Cli, postgres_url: str, engine: Engine, sim: Simulator, tmp_path: Path
) -> None:
    """A dry run leaves everyone pending: the sender must not read the campaign again and again."""
    make_campaign(run, postgres_url, tmp_path, "c1", 12)
    (result,) = finish(senders_of(postgres_url, sim, "c1", 1, "--dry-run"))
    assert result[0] == 0, result
    calls = [a["context"]["recipient"] for a in sim.accepted(dry_run=True)]
    assert len(calls) == 12 and len(set(calls)) == 12
    assert counts(engine) == {"pending": 12}
