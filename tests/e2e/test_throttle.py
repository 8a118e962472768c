"""`campaign send` against random service-side throttles and 500s (issue 8): the real CLI, real boto3,
the simulator over HTTP at 100 ms latency.

Round 1 cut the rate x0.7 on every throttle, so 10% random throttles drove it to ~1% of --mps
within seconds (1,200 recipients at --mps 200 took minutes). The throttle control now finds that
cutting the rate does not change the share of throttles and holds --mps; the sender retries the
throttled recipients. Timing bounds are generous: a fifth of the expected rate.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from campaign.simulator.server import Simulator, SimulatorConfig
from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.slow

RECIPIENTS = 1200
MPS = 200
EXPECTED = MPS * 0.85  # accepted messages/s once the controller holds --mps (10% + 5% fail)


def recipients_csv(path: Path, n: int) -> Path:
    """n distinct valid US numbers (fictional 555 exchange, varied area codes)."""
    area_codes = ["206", "312", "415", "303"]
    lines = ["first_name,phone"]
    lines += [f"Sam{i},({area_codes[i % 4]}) 555-{i // 4:04d}" for i in range(n)]
    return write_csv(path, "\n".join(lines) + "\n")


def test_random_throttles_and_500s_do_not_slow_the_send_down(run: Cli, tmp_path: Path) -> None:
    config = SimulatorConfig(
        mps=1000,  # no limit in reach: every throttle is a random one
        throttle_rate=0.10,
        error_rate=0.05,
        latency_ms=100,
        seed=7,
        log_path=tmp_path / "sim.jsonl",
    )
    run(
        "create", "c1", "-o", "+12065550100", "-m", "Hi {first_name}, sale today. Reply STOP",
        "--no-window",  # promotional: sends at any hour of the day
    )  # fmt: skip
    csv = recipients_csv(tmp_path / "c1.csv", RECIPIENTS)
    run("import", "c1", str(csv), "--default-region", "US")
    send = ("send", "c1", "--yes", "--mps", str(MPS))
    with Simulator(config) as sim:
        started = time.monotonic()
        result = run("--endpoint-url", sim.url, *send, code=None)
        elapsed = time.monotonic() - started
        stats = sim.stats()
        accepted = sim.accepted(dry_run=False)
        if result.exit_code == 1:
            # A recipient whose calls met 5 500s is left `pending` for the next run
            # (retry.MAX_TRANSIENT_ATTEMPTS; throttles do not count toward the 5): rarer than
            # 1e-6 per recipient here. Run it again, as the tool says.
            assert "still pending: run `campaign --endpoint-url" in result.stderr
            assert len(accepted) >= RECIPIENTS - 5
            run("--endpoint-url", sim.url, *send)
        else:
            assert result.exit_code == 0, result.stderr
            assert f"Sent {RECIPIENTS:,}" in result.stderr
        accepted = sim.accepted(dry_run=False)

    # It finished, and everyone was sent exactly once: throttled and 500ed recipients were
    # retried, none dropped, none sent twice.
    assert len(accepted) == RECIPIENTS
    assert len({a["destination"] for a in accepted}) == RECIPIENTS
    counts = run.json("status", "c1", "--json")["counts"]
    assert counts["sent"] == RECIPIENTS and counts["pending"] == 0 and counts["unknown"] == 0
    # The faults really happened, at about the configured shares.
    calls = stats.operations["SendTextMessage"]
    assert 0.05 < stats.throttled / calls < 0.15
    assert 0.02 < stats.errors / calls < 0.09

    # The rate held: round 1 would need minutes here (well over 100 s).
    assert RECIPIENTS / elapsed > EXPECTED / 5, f"{elapsed:.1f} s for {RECIPIENTS} recipients"
    times = sorted(datetime.fromisoformat(a["ts"]).timestamp() for a in accepted)
    times = [t for t in times if t <= times[0] + elapsed]  # the first run's
    steady = [t for t in times if times[0] + 2 <= t <= times[-1] - 1]
    steady_rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert steady_rate > EXPECTED / 5, f"{steady_rate:.0f} accepted/s in the steady state"
