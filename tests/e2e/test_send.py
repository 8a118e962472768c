"""`campaign send` end to end: the real CLI, real boto3, the local simulator over HTTP."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, campaign_process, write_csv

pytestmark = pytest.mark.slow


def recipients_csv(path: Path, n: int, *, start: int = 0, name: str = "Sam") -> Path:
    """n distinct valid US numbers (fictional 555 exchange, varied area codes)."""
    area_codes = ["206", "312", "415", "303", "512", "720", "617", "212"]
    lines = ["first_name,phone"]
    for i in range(start, start + n):
        area = area_codes[i // 10_000 % len(area_codes)]
        lines.append(f"{name}{i},({area}) 555-{i % 10_000:04d}")
    return write_csv(path, "\n".join(lines) + "\n")


def make_campaign(
    run: Cli,
    tmp_path: Path,
    n: int,
    *,
    name: str = "c1",
    message: str = "Hi {first_name}, spring sale today. Reply STOP to opt out",
    extra: tuple[str, ...] = (),
) -> None:
    # Promotional with --no-window, so that it sends at any hour (tests/e2e/test_windows.py
    # sends inside and outside windows).
    run("create", name, "-o", "+12065550100", "-m", message, "--no-window", *extra)
    run("import", name, str(recipients_csv(tmp_path / f"{name}.csv", n)), "--default-region", "US")


def status(run: Cli, name: str = "c1") -> dict[str, Any]:
    return run.json("status", name, "--json")


def ledger_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def send(run: Cli, sim: Simulator, *args: str, code: int | None = 0, name: str = "c1") -> Any:
    return run("--endpoint-url", sim.url, "send", name, "--yes", *args, code=code)


def test_send_delivers_everyone_once_with_context_and_options(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    make_campaign(
        run,
        tmp_path,
        25,
        extra=(
            "--message-type",
            "TRANSACTIONAL",
            "--max-price",
            "0.05",
            "--ttl",
            "3600",
            "--configuration-set",
            "default",
            "--context",
            "team=growth",
            "--keyword",
            "SALE",
            "--country-parameter",
            "IN_ENTITY_ID=1201159",
            "--protect-configuration-id",
            "protect-0123",
            "--message-feedback",
        ),
    )
    result = send(run, simulator, "--mps", "200")
    assert "Sent 25" in result.stderr
    counts = status(run)["counts"]
    assert counts["sent"] == 25 and counts["pending"] == 0 and counts["sending"] == 0
    accepted = simulator.accepted(dry_run=False)
    assert len(accepted) == 25
    assert len({a["destination"] for a in accepted}) == 25
    first = accepted[0]
    assert first["message_type"] == "TRANSACTIONAL"
    assert first["max_price"] == "0.05" and first["ttl"] == 3600
    assert first["configuration_set"] == "default"
    assert first["keyword"] == "SALE"
    assert first["country_parameters"] == {"IN_ENTITY_ID": "1201159"}
    assert first["protect_configuration_id"] == "protect-0123"
    assert first["message_feedback"] is True
    assert first["context"]["team"] == "growth"
    assert first["context"]["campaign"] == "c1"
    assert first["context"]["recipient"].isdigit()
    assert first["body"].startswith("Hi Sam")
    # The MessageId the API returned is the one stored.
    report = run("report", "c1").stdout.splitlines()
    ids = {line.split(",")[8] for line in report[1:]}
    assert ids == {a["message_id"] for a in accepted}


def test_second_send_sends_nothing_more(run: Cli, tmp_path: Path, simulator: Simulator) -> None:
    make_campaign(run, tmp_path, 5)
    send(run, simulator, "--mps", "100")
    again = send(run, simulator, "--mps", "100")
    assert "Nothing to send" in again.stderr
    assert len(simulator.accepted(dry_run=False)) == 5


def test_refuses_without_confirmation_when_no_terminal(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    make_campaign(run, tmp_path, 3)
    result = run("--endpoint-url", simulator.url, "send", "c1", "--mps", "50", code=1)
    assert "pass --yes" in result.stderr
    assert simulator.accepted() == []
    assert status(run)["counts"]["pending"] == 3


@pytest.mark.parametrize(
    ("parts_message", "mps", "n", "parts"),
    [
        # one-part messages at 20 parts/s
        ("Hi {first_name}", 20, 40, 1),
        # three-part messages (GSM-7, 307..459 septets) at 30 parts/s: 10 messages a second
        ("Hi {first_name} " + "x" * 400, 30, 20, 3),
    ],
)
def test_pacing_counts_parts_and_stays_under_the_limit(
    run: Cli, tmp_path: Path, parts_message: str, mps: int, n: int, parts: int
) -> None:
    # The simulator enforces the same MPS: going over it would show up as throttles.
    with Simulator(SimulatorConfig(mps=mps, latency_ms=50, jitter_ms=50)) as sim:
        make_campaign(run, tmp_path, n, message=parts_message)
        send(run, sim, "--mps", str(mps))
        accepted = sim.accepted(dry_run=False)
        stats = sim.stats()
    assert len(accepted) == n
    assert {a["parts"] for a in accepted} == {parts}
    assert stats.throttled == 0
    stamps = sorted(datetime.fromisoformat(a["ts"].replace("Z", "+00:00")) for a in accepted)
    # Steady state: skip the first second's burst allowance, then parts/s must not exceed MPS.
    span = (stamps[-1] - stamps[0]).total_seconds()
    rate = (len(stamps) - 1) * parts / span
    assert rate <= mps * 1.1, f"{rate:.1f} parts/s over the limit of {mps}"
    assert rate >= mps * 0.5, f"{rate:.1f} parts/s is far below {mps}"


def test_throttles_slow_down_and_nobody_is_dropped(run: Cli, tmp_path: Path) -> None:
    # The account really allows 10 MPS; the user asks for 40.
    with Simulator(SimulatorConfig(mps=10, latency_ms=20)) as sim:
        make_campaign(run, tmp_path, 40)
        result = send(run, sim, "--mps", "40")
        accepted = sim.accepted(dry_run=False)
        throttled = sim.stats().throttled
    assert throttled > 0
    assert "throttles" in result.stderr
    assert len(accepted) == 40
    assert max(Counter(a["destination"] for a in accepted).values()) == 1
    assert status(run)["counts"]["sent"] == 40


def test_per_recipient_errors_are_recorded_with_reasons(run: Cli, tmp_path: Path) -> None:
    config = SimulatorConfig(
        mps=500,
        opted_out=frozenset({"+12065550001"}),
        reject_destinations={
            "+12065550002": ("ValidationException", "DESTINATION_COUNTRY_BLOCKED")
        },
    )
    with Simulator(config) as sim:
        make_campaign(run, tmp_path, 5)
        send(run, sim, "--mps", "100")
    report = {
        line.split(",")[2]: line.split(",") for line in run("report", "c1").stdout.splitlines()[1:]
    }
    assert report["+12065550001"][4] == "opted_out"
    assert "DESTINATION_PHONE_NUMBER_OPTED_OUT" in report["+12065550001"][5]
    assert report["+12065550002"][4] == "failed"
    assert "ValidationException" in report["+12065550002"][5]
    assert "DESTINATION_COUNTRY_BLOCKED" in report["+12065550002"][5]
    assert status(run)["counts"]["sent"] == 3


def test_server_errors_are_retried_and_never_lose_anyone(run: Cli, tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(mps=500, error_rate=0.3, seed=3)) as sim:
        make_campaign(run, tmp_path, 30)
        first = send(run, sim, "--mps", "200", code=None)
        errors = sim.stats().errors
        assert errors > 0 and "retries" in first.stderr
        counts = status(run)["counts"]
        # A 5xx is certainly not sent: retried (bounded); a recipient that still fails stays
        # pending for the next run (exit 1 says so) - never failed, never unknown.
        assert counts["failed"] == counts["unknown"] == counts["sending"] == 0
        assert counts["sent"] + counts["pending"] == 30
        if first.exit_code != 0:
            assert first.exit_code == 1 and "still pending" in first.stderr
        assert counts["sent"] == len(sim.accepted(dry_run=False))
        sim.set_faults(error_rate=0.0)
        send(run, sim, "--mps", "200")
        accepted = sim.accepted(dry_run=False)
    assert len(accepted) == 30 == len({a["destination"] for a in accepted})
    assert status(run)["counts"]["sent"] == 30


def test_scattered_server_errors_do_not_trip_the_outage_breaker(run: Cli, tmp_path: Path) -> None:
    """The breaker halts after N calls *in a row* fail unsent; a success between errors breaks the
    row (it used to count every error since the start: 10% of 5xx halted a healthy run)."""
    with Simulator(SimulatorConfig(mps=1000, error_rate=0.1, seed=5)) as sim:
        make_campaign(run, tmp_path, 300)
        # --concurrency 5: the breaker's smallest threshold, 20 calls in a row
        result = send(run, sim, "--mps", "500", "--concurrency", "5")
        assert sim.stats().errors >= 20
        assert "not answering" not in result.stderr
    assert status(run)["counts"]["sent"] == 300


def test_dropped_connection_after_the_request_is_unknown_not_resent(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    with Simulator(SimulatorConfig(mps=500, drop_rate=0.2, seed=11)) as sim:
        make_campaign(run, tmp_path, 30)
        send(run, sim, "--mps", "200")
        dropped = sim.stats().dropped
        assert dropped > 0
        counts = status(run)["counts"]
        assert counts["unknown"] == dropped
        assert counts["sent"] == 30 - dropped
        # Every accepted message (dropped ones included) is sent or unknown; nobody twice.
        accepted = sim.accepted(dry_run=False)
        assert len(accepted) == 30
        # A resume does not touch unknown recipients...
        send(run, sim, "--mps", "200")
        assert len(sim.accepted(dry_run=False)) == 30
        # ...unless asked, after a warning.
        sim.set_faults(drop_rate=0.0)
        result = send(run, sim, "--mps", "200", "--retry-unknown")
        assert "may already have the message" in result.stderr
        assert len(sim.accepted(dry_run=False)) == 30 + dropped
    assert status(run)["counts"]["sent"] == 30


def test_read_timeout_is_unknown(run: Cli, tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(mps=500, timeout_rate=1.0, timeout_delay_s=3)) as sim:
        make_campaign(run, tmp_path, 2)
        send(run, sim, "--mps", "50", "--timeout", "1")
        assert len(sim.accepted(dry_run=False)) == 2
    counts = status(run)["counts"]
    assert counts["unknown"] == 2 and counts["sent"] == 0


@pytest.mark.parametrize(
    ("config", "words"),
    [
        # the monthly spend limit is reached after 4 messages
        (SimulatorConfig(mps=500, fail_after=4), "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"),
        # the origination identity does not exist in this account
        (SimulatorConfig(mps=500, identities=()), "ResourceNotFoundException"),
    ],
)
def test_account_level_errors_halt_with_exit_4_and_resume(
    run: Cli, tmp_path: Path, config: SimulatorConfig, words: str
) -> None:
    with Simulator(config) as sim:
        make_campaign(run, tmp_path, 12)
        result = send(run, sim, "--mps", "100", code=4)
        assert words in result.stderr
        accepted = len(sim.accepted(dry_run=False))
        counts = status(run)["counts"]
        assert counts["sending"] == 0
        assert counts["sent"] == accepted
        assert counts["pending"] == 12 - accepted
    # Fixed (a fresh account): the same command finishes the campaign.
    with Simulator(SimulatorConfig(mps=500)) as sim:
        send(run, sim, "--mps", "100")
        assert len(sim.accepted(dry_run=False)) == 12 - accepted
    assert status(run)["counts"]["sent"] == 12


def test_dry_run_marks_nobody_sent_and_stays_at_5_mps(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    make_campaign(run, tmp_path, 8)
    result = run("--endpoint-url", simulator.url, "send", "c1", "--dry-run", "--mps", "50")
    assert "AWS caps dry runs at 5 MPS" in result.stderr
    assert "Nobody was sent anything" in result.stderr
    assert len(simulator.accepted(dry_run=True)) == 8
    assert simulator.accepted(dry_run=False) == []
    counts = status(run)["counts"]
    assert counts["pending"] == 8 and counts["sent"] == 0


def test_dry_run_sample_covers_every_class(run: Cli, tmp_path: Path, simulator: Simulator) -> None:
    run("create", "c1", "-o", "+12065550100", "-m", "Hi {first_name}")
    rows = ["first_name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(30)]
    rows += ["Zoë,+13125550100", "Chloe,+61455944038"]  # a UCS-2 class and an AU class
    run("import", "c1", str(write_csv(tmp_path / "r.csv", "\n".join(rows) + "\n")))
    result = run("--endpoint-url", simulator.url, "send", "c1", "--dry-run", "--sample", "3")
    sampled = simulator.accepted(dry_run=True)
    assert {a["destination"] for a in sampled} >= {"+13125550100", "+61455944038"}
    assert len(sampled) <= 6
    assert "UCS-2" in result.stdout and "AU" in result.stdout
    assert "every class passed" in result.stdout


def test_budget_stops_before_passing_it_and_resumes(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    prices = write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,0.01\n")
    make_campaign(run, tmp_path, 10)
    result = send(
        run, simulator, "--mps", "100", "--prices", str(prices), "--budget", "0.055", code=4
    )
    assert "budget" in result.stderr
    assert len(simulator.accepted(dry_run=False)) == 5  # 5 x $0.01 <= $0.055 < 6 x $0.01
    send(run, simulator, "--mps", "100", "--prices", str(prices), "--budget", "1")
    assert status(run)["counts"]["sent"] == 10
    spend = run.json("status", "c1", "--json", "--prices", str(prices))["spend"]
    assert spend["sent"] == pytest.approx(0.10) and spend["to_send"] == 0


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sigint_stops_claiming_records_in_flight_and_exits_3(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    with Simulator(SimulatorConfig(mps=500, latency_ms=300)) as sim:
        make_campaign(run, tmp_path, 200)
        proc = campaign_process("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "20")
        _wait_for(lambda: len(sim.accepted()) >= 10)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err
        assert (
            f"run `campaign --endpoint-url {sim.url} send c1 --mps 20 --yes` again to resume" in err
        )
        counts = status(run)["counts"]
        assert counts["sending"] == 0 and counts["unknown"] == 0
        # Every call that went out was recorded: nothing accepted is left pending.
        assert counts["sent"] == len(sim.accepted(dry_run=False))
        assert counts["pending"] == 200 - counts["sent"]


def test_a_second_sender_refuses_while_one_runs(run: Cli, tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(mps=500, latency_ms=100)) as sim:
        make_campaign(run, tmp_path, 100)
        proc = campaign_process("--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "10")
        try:
            _wait_for(lambda: len(sim.accepted()) >= 2)
            result = send(run, sim, "--mps", "10", code=1)
            assert "already being sent" in result.stderr
            _wait_for(lambda: status(run)["counts"]["sent"] >= 2)
            live = status(run)
            assert live["sender"] is not None
            # status in another terminal shows the live rate and an ETA
            assert live["rate_parts_per_second"] > 0 and live["eta_seconds"] > 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)


@pytest.mark.parametrize("processes", ["0", "2"], ids=["threads", "worker-processes"])
def test_sigkill_at_random_moments_never_double_sends(
    run: Cli, tmp_path: Path, isolated_env: Path, processes: str
) -> None:
    """Kill the sender with SIGKILL at several moments, restart it each time, then check the four
    guarantees of docs/contract.md against the simulator's log of accepted messages."""
    import random

    rng = random.Random(2026)
    concurrency = 8
    n = 300
    with Simulator(SimulatorConfig(mps=1000, latency_ms=40, jitter_ms=80)) as sim:
        make_campaign(run, tmp_path, n)
        args = (
            "--endpoint-url",
            sim.url,
            "send",
            "c1",
            "--yes",
            "--mps",
            "120",
            "--concurrency",
            str(concurrency),
            "--processes",
            processes,
        )
        kills = 0
        for _ in range(5):
            before = len(sim.accepted())
            proc = campaign_process(*args)
            # Kill mid-send: once this sender has calls going, at a random moment after.
            _wait_for(lambda before=before: len(sim.accepted()) >= before + 5)
            time.sleep(rng.uniform(0.0, 0.5))
            proc.kill()
            proc.communicate(timeout=30)
            kills += 1
            # What the dead sender left `sending` becomes `unknown` at the next start:
            assert status(run)["counts"]["sending"] <= concurrency  # guarantee 3, per kill
        final = campaign_process(*args)
        _out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        accepted = sim.accepted(dry_run=False)

    destinations = Counter(a["destination"] for a in accepted)
    # 1. nobody was passed to a real send twice
    assert max(destinations.values()) == 1
    rows = {
        phone: (state, message_id)
        for phone, state, message_id in ledger_rows(
            isolated_env, "SELECT phone, state, message_id FROM recipients"
        )
    }
    # 2. every accepted message ended `sent` with its MessageId, or `unknown`
    for a in accepted:
        state, message_id = rows[a["destination"]]
        assert state in ("sent", "unknown"), (a["destination"], state)
        if state == "sent":
            assert message_id == a["message_id"]
    # 3. at most `concurrency` unknown per kill
    counts = status(run)["counts"]
    assert counts["unknown"] <= concurrency * kills
    # 4. everyone is final, and every recipient not accepted was... accepted at the end
    assert counts["pending"] == 0 and counts["sending"] == 0
    assert counts["sent"] + counts["unknown"] == n
    assert len(accepted) >= counts["sent"]
    runs = ledger_rows(isolated_env, "SELECT count(*) FROM runs")[0][0]
    assert runs == kills + 1


def test_unreachable_endpoint_halts_instead_of_walking_the_list(run: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_campaign(run, tmp_path, 200)
    result = run(
        "--endpoint-url", f"http://127.0.0.1:{port}", "send", "c1", "--yes", "--mps", "500", code=4
    )
    assert "not answering" in result.stderr
    counts = status(run)["counts"]
    # Nothing was sent, nothing is in doubt: everyone is still pending.
    assert counts["pending"] == 200 and counts["unknown"] == 0 and counts["sending"] == 0


def test_second_sigint_exits_at_once_and_the_next_send_reports_the_unknown(
    run: Cli, tmp_path: Path
) -> None:
    with Simulator(SimulatorConfig(mps=500, latency_ms=1500)) as sim:
        make_campaign(run, tmp_path, 50)
        proc = campaign_process(
            "--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "20", "--concurrency", "5"
        )
        _wait_for(lambda: len(sim.accepted()) >= 3)  # calls in flight for 1.5 s each
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _out, _err = proc.communicate(timeout=10)
        assert proc.returncode == 3
        # It did not wait for the calls in flight: those claims are still `sending`...
        left = status(run)["counts"]["sending"]
        assert 1 <= left <= 5
        # ...and the next sender marks them unknown (they may have gone out) and says so.
        sim.set_faults(latency_ms=0)
        result = send(run, sim, "--mps", "200")
        assert f"{left} recipients were mid-call" in result.stderr
        counts = status(run)["counts"]
        assert counts["unknown"] == left and counts["sent"] == 50 - left
        assert max(Counter(a["destination"] for a in sim.accepted(dry_run=False)).values()) == 1


def test_worker_processes_send_everyone_once_and_stop_on_sigint(run: Cli, tmp_path: Path) -> None:
    with Simulator(SimulatorConfig(mps=1000, latency_ms=200)) as sim:
        make_campaign(run, tmp_path, 300)
        proc = campaign_process(
            "--endpoint-url", sim.url, "send", "c1", "--yes", "--mps", "100", "--processes", "2"
        )
        _wait_for(lambda: len(sim.accepted()) >= 20)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err
        counts = status(run)["counts"]
        # Ctrl-C reached the worker processes too: they finished their calls, all recorded.
        assert counts["sending"] == 0 and counts["unknown"] == 0
        assert counts["sent"] == len(sim.accepted(dry_run=False))
        send(run, sim, "--mps", "300", "--processes", "2")
        accepted = sim.accepted(dry_run=False)
    assert len(accepted) == 300 == len({a["destination"] for a in accepted})
    assert status(run)["counts"]["sent"] == 300


def _worker_pids(parent: int) -> list[int]:
    pids = []
    for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:
            pids.append(int(child))
    return pids


def test_a_dead_worker_process_stops_the_send_and_nothing_is_lost(run: Cli, tmp_path: Path) -> None:
    import os

    with Simulator(SimulatorConfig(mps=1000, latency_ms=300)) as sim:
        make_campaign(run, tmp_path, 200)
        proc = campaign_process(
            "--endpoint-url",
            sim.url,
            "send",
            "c1",
            "--yes",
            "--mps",
            "60",
            "--processes",
            "2",
            "--concurrency",
            "10",
        )
        _wait_for(lambda: len(sim.accepted()) >= 10)
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "worker process" in err
        send(run, sim, "--mps", "300")
        accepted = sim.accepted(dry_run=False)
    counts = status(run)["counts"]
    assert max(Counter(a["destination"] for a in accepted).values()) == 1
    assert counts["unknown"] <= 10 and counts["pending"] == 0 and counts["sending"] == 0
    assert counts["sent"] + counts["unknown"] == 200
