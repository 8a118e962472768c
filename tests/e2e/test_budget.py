"""Issue 13 item 1: the budget is a cap. Calls in flight count at their estimated price, a budget
stored on the campaign covers every run (what earlier runs sent counts from the start), and the
run-level --budget holds too. Checked against the simulator's own count of accepted messages, with
a latency high enough that hundreds of calls are in flight at once. Also: `send --prices` warns of
messages over MaxPrice."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow

ORIGIN = "+12065550100"
PRICE = 0.01  # per part, US


def _setup(run: Cli, tmp_path: Path, n: int, *create: str) -> Path:
    run(
        "create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--no-window", *create
    )  # promotional: any hour
    lines = ["first_name,phone"] + [f"Sam{i},+1206555{i:04d}" for i in range(n)]
    run("import", "c1", str(write_csv(tmp_path / "c1.csv", "\n".join(lines) + "\n")))
    return write_csv(tmp_path / "prices.csv", f"country,price_per_part\nUS,{PRICE}\n")


def _send(run: Cli, sim: Simulator, prices: Path, *args: str, code: int = 0) -> str:
    result = run(
        "--endpoint-url", sim.url, "send", "c1", "--yes", "--prices", str(prices), *args, code=code
    )
    return str(result.stderr)


@pytest.fixture
def slow_simulator() -> object:
    # 1 s a call: at --mps 100 and --concurrency 200 about 100 calls are always in flight, the
    # setting where counting only settled spend overspent 2.75x.
    with Simulator(SimulatorConfig(mps=1000, latency_ms=1000)) as sim:
        yield sim


def test_run_budget_counts_the_calls_in_flight(
    run: Cli, tmp_path: Path, slow_simulator: Simulator
) -> None:
    prices = _setup(run, tmp_path, 300)
    err = _send(
        run,
        slow_simulator,
        prices,
        *("--budget", "0.50", "--mps", "100", "--concurrency", "200"),
        code=4,
    )
    accepted = len(slow_simulator.accepted(dry_run=False))
    assert accepted * PRICE <= 0.50 + PRICE  # at most one message over
    assert accepted == 50  # and nothing in flight ever failed, so exactly the budget
    assert "budget reached" in err


def test_campaign_budget_covers_every_run_and_a_resume(
    run: Cli, tmp_path: Path, slow_simulator: Simulator
) -> None:
    prices = _setup(run, tmp_path, 300, "--budget", "0.40")
    assert run.json("status", "c1", "--json")["budget"] == "0.40"
    assert "$0.40" in run("list").stdout
    fast = ("--mps", "100", "--concurrency", "200")
    _send(run, slow_simulator, prices, "--limit", "15", *fast)  # a first run: 15 sent
    # The resume counts the 15 already sent: 25 more at most, not 40.
    err = _send(run, slow_simulator, prices, *fast, code=4)
    assert "the campaign's budget is reached" in err
    assert len(slow_simulator.accepted(dry_run=False)) == 40
    # Run again: nothing more goes out, whatever the run-level --budget says.
    _send(run, slow_simulator, prices, "--budget", "100", *fast, code=4)
    assert len(slow_simulator.accepted(dry_run=False)) == 40
    # Raised on the campaign, the next run goes on from there; its own --budget holds too.
    run("edit", "c1", "--budget", "1")
    err = _send(run, slow_simulator, prices, "--budget", "0.05", *fast, code=4)
    assert "would pass --budget $0.05" in err
    assert len(slow_simulator.accepted(dry_run=False)) == 45
    run("edit", "c1", "--budget", "none")
    assert run.json("status", "c1", "--json")["budget"] is None


def test_a_campaign_budget_needs_prices(run: Cli, tmp_path: Path) -> None:
    _setup(run, tmp_path, 3, "--budget", "5")
    result = run("--endpoint-url", "http://127.0.0.1:9", "send", "c1", "--yes", code=2)
    assert "has a budget ($5): pass --prices" in result.stderr


def test_send_prices_warns_of_messages_over_max_price(
    run: Cli, tmp_path: Path, simulator: Simulator
) -> None:
    """Issue 13 item 8: `send --prices` warns, as `estimate` does, before AWS refuses them."""
    prices = _setup(run, tmp_path, 3, "--max-price", "0.005")
    err = _send(run, simulator, prices, "--dry-run")
    assert (
        "WARNING: 3 messages cost more than MaxPrice $0.005 and AWS will reject them: "
        "US 3 (1+ parts at $0.01)"
    ) in err
    run("edit", "c1", "--max-price", "0.05")
    err = _send(run, simulator, prices, "--dry-run")
    assert "Dry run: 3 accepted" in err and "MaxPrice" not in err
